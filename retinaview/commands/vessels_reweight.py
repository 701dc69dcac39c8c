"""`retinaview vessels-reweight`: mIoU and F1 against a factor on each DRIU side output (Maninis et al. 2016)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected numbers separated by commas"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one factor")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vessels-reweight",
        help="multiply one DRIU side output by a factor and re-measure mIoU and F1",
        description="The side-output re-weighting experiment: each side output of a DRIU vessel network "
        "(conv1_2, upsample2, upsample4, upsample8) is multiplied by each factor before the fuse layer, "
        "and the mean mIoU and F1 inside the field of view are measured over synthetic test images.",
    )
    p.add_argument(
        "--model", default="default", help="'default' (bundled vessel model) or a checkpoint"
    )
    p.add_argument(
        "--data", default="synth:20:5000", help="synth:N:SEED test images (default synth:20:5000)"
    )
    p.add_argument(
        "--factors", type=_floats, default=_floats("0,0.5,1,1.5,2,3"), help="e.g. 0,0.5,1,2"
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    p.add_argument(
        "--plot", metavar="PNG", help="write a plot of mIoU against the factor per branch"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinaview.commands._progress import Progress
    from retinaview.core.segment import load_vessel_model
    from retinaview.train.vessels import reweight_experiment

    model = load_vessel_model(args.model, device=args.device)
    bar = Progress(4 * len(args.factors), "reweight")
    rows = reweight_experiment(
        model, model.spec, args.data, args.factors, progress=lambda done, total: bar.update()
    )
    bar.close()
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{'branch':<10} {'factor':>6} {'mIoU':>7} {'F1':>7}")
        for row in rows:
            print(f"{row['label']:<10} {row['factor']:>6.2f} {row['miou']:>7.4f} {row['f1']:>7.4f}")
    if args.plot:
        plot_reweight(rows, Path(args.plot))
        print(f"retinaview: wrote {args.plot}", file=sys.stderr)
    return 0


def plot_reweight(rows: list[dict], path: Path) -> None:
    """mIoU against the factor, one line per branch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        ax.plot([r["factor"] for r in mine], [r["miou"] for r in mine], marker="o", label=label)
    ax.axvline(1.0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("factor on the side output")
    ax.set_ylabel("mean mIoU inside the field of view")
    ax.set_title("DRIU side-output re-weighting")
    ax.legend(title="branch")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
