"""`retinaview study create|summary`: a reader study with assistance arms (after Sayres et al. 2019)."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="reader study: draw a randomised design, summarise the readers' grades per arm",
        description="A reader study after Sayres et al. (2019): every reader grades every image once, each "
        "image under one assistance arm (unassisted, grade, grade+map), assigned at random and balanced. "
        "'create' draws the design into a study file; 'summary' compares the arms against reference labels.",
    )
    ss = p.add_subparsers(dest="study_command", metavar="ACTION")
    c = ss.add_parser("create", help="draw the design into a new study file")
    c.add_argument("--images", required=True, metavar="DIR", help="folder of the study's images")
    c.add_argument("--readers", required=True, type=int, metavar="N", help="number of readers")
    c.add_argument(
        "--arms",
        default="unassisted,grade,grade+map",
        help="comma-separated arms among unassisted, grade, grade+map (default: all three)",
    )
    c.add_argument("--seed", type=int, default=0, help="seed of the random design (default 0)")
    c.add_argument(
        "--map-threshold",
        type=float,
        default=2.0,
        metavar="N",
        help="fixed threshold (n sigma) of the heatmap in the grade+map arm (default 2)",
    )
    c.add_argument("--out", required=True, metavar="STUDY", help="study file to create (.sqlite)")
    c.set_defaults(func=run_create)
    s = ss.add_parser("summary", help="accuracy, QWK, sensitivity, specificity and time per arm")
    s.add_argument("study", metavar="STUDY", help="study file")
    s.add_argument(
        "--reference", required=True, metavar="CSV", help="reference labels (image,level)"
    )
    s.add_argument(
        "--out", metavar="DIR", help="write study_summary.csv and study_summary.png here"
    )
    s.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples for QWK"
    )
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    s.set_defaults(func=run_summary)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def run_create(args: argparse.Namespace) -> int:
    from retinaview.core.common.study import create_study, study_info

    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    path = create_study(
        args.images,
        args.out,
        args.readers,
        arms=arms,
        seed=args.seed,
        map_threshold=args.map_threshold,
    )
    info = study_info(path)
    print(
        f"retinaview: study {path}: {info['cases'] // info['readers']} images, {info['readers']} "
        f"readers, arms {','.join(info['arms'])}, seed {info['seed']}",
        file=sys.stderr,
    )
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def run_summary(args: argparse.Namespace) -> int:
    from retinaview.core.common.study import SUMMARY_COLUMNS, summarize

    rows = summarize(args.study, args.reference, n_boot=args.bootstrap, seed=args.seed)
    print(
        f"{'arm':<11} {'reader':>6} {'n':>5} {'accuracy (95% CI)':>22} {'QWK (95% CI)':>22} "
        f"{'sensitivity':>22} {'specificity':>22} {'s/image':>8}"
    )
    for r in rows:

        def ci(k: str, r=r) -> str:
            return f"{_fmt(r[k])} [{_fmt(r[k + '_lo'])}, {_fmt(r[k + '_hi'])}]"

        print(
            f"{r['arm']:<11} {str(r['reader']):>6} {r['n']:>5} {ci('accuracy'):>22} {ci('qwk'):>22} "
            f"{ci('sensitivity'):>22} {ci('specificity'):>22} {r['seconds_mean']:>8.2f}"
        )
    if args.out:
        from retinaview.core.common.errors import DataError

        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "study_summary.csv", "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(SUMMARY_COLUMNS)
                for r in rows:
                    w.writerow([_fmt(r[c]) for c in SUMMARY_COLUMNS])
            plot_summary(rows, out / "study_summary.png")
        except OSError as exc:
            raise DataError(f"{out}: cannot write ({exc.strerror or exc})") from None
        print(f"retinaview: wrote {out / 'study_summary.csv'} and .png", file=sys.stderr)
    return 0


def plot_summary(rows: list[dict], path: Path) -> None:
    """One panel per figure (accuracy, QWK, sensitivity, specificity, seconds per image): the arm's value
    with its 95 % interval, and each reader's value as a small grey dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [r["arm"] for r in rows if r["group"] == "arm"]
    panels = (
        ("accuracy", "accuracy"),
        ("qwk", "quadratic weighted kappa"),
        ("sensitivity", "referable sensitivity"),
        ("specificity", "referable specificity"),
        ("seconds_mean", "seconds per image"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.4), dpi=120)
    colours = plt.get_cmap("tab10")
    for ax, (key, title) in zip(axes, panels, strict=True):
        for i, arm in enumerate(arms):
            readers = [r[key] for r in rows if r["group"] == "reader" and r["arm"] == arm]
            ax.scatter([i + 0.18] * len(readers), readers, s=10, color="0.6", zorder=1, label=None)
            (a,) = [r for r in rows if r["group"] == "arm" and r["arm"] == arm]
            v = a[key]
            if key == "seconds_mean":
                ax.bar(i, v, width=0.5, color=colours(i), alpha=0.8)
            else:
                lo, hi = a[key + "_lo"], a[key + "_hi"]
                err = [[max(v - lo, 0)], [max(hi - v, 0)]] if not math.isnan(lo) else None
                ax.errorbar(i, v, yerr=err, fmt="o", color=colours(i), capsize=4, ms=7, zorder=2)
        ax.set_xticks(range(len(arms)), arms, rotation=20)
        ax.set_xlim(-0.6, len(arms) - 0.4)
        if key != "seconds_mean":
            ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", color="0.9")
        ax.set_axisbelow(True)
    n = sum(r["n"] for r in rows if r["group"] == "arm")
    fig.suptitle(f"Reader study by assistance arm ({n} gradings; 95 % intervals, readers in grey)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
