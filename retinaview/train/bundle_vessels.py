"""Bundle a trained vessel network: evaluate it on an unseen synthetic seed, run the side-output re-weighting
experiment, and write ``resources/models/driu_synthetic.pt`` with its model card.

    python -m retinaview.train.bundle_vessels RUN_DIR [--test synth:100:5000] [--reweight synth:20:6000]

The bundled file holds the best validation epoch's weights (the threshold chosen on the validation set is in
its config). Everything the card states is measured here, by the command above.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from retinaview.core.checkpoint import load_checkpoint, save_checkpoint
from retinaview.train.vessels import METRICS, evaluate_vessels, reweight_experiment

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "models"
BUNDLED = RESOURCES / "driu_synthetic.pt"
CARD = RESOURCES / "MODEL_CARD_vessels.md"
FACTORS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def _table(rows: list[dict], keys: list[str], heads: list[str]) -> str:
    lines = ["| " + " | ".join(heads) + " |", "| " + " | ".join("---" for _ in heads) + " |"]
    for r in rows:
        cells = [f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(
    run_dir: Path,
    test: dict,
    test_source: str,
    reweight: list[dict],
    reweight_source: str,
    payload: dict,
) -> str:
    """The vessel model card's Markdown: data, command, figures on the unseen test seed, re-weighting."""
    cfg = payload.get("train_state", {}).get("config") or {}
    history = []
    metrics_file = run_dir / METRICS
    if metrics_file.exists():
        history = [
            json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()
        ]
    config = payload["config"]
    n_params = sum(v.numel() for k, v in payload["state_dict"].items() if "branch_weights" not in k)
    curve = _table(
        [
            {
                "epoch": h["epoch"],
                "loss": h["loss"],
                "f1": h["val_f1"],
                "miou": h["val_miou"],
                "auc": h["val_auc"],
                "t": h.get("val_threshold", float("nan")),
            }
            for h in history
        ],
        ["epoch", "loss", "f1", "miou", "auc", "t"],
        ["epoch", "train loss", "val F1", "val mIoU", "val AUC", "threshold"],
    )
    by_branch = _table(
        reweight,
        ["label", "factor", "miou", "f1"],
        ["branch", "factor", "mIoU", "F1"],
    )
    command = (
        "retinaview train --task vessels --arch driu "
        f"--width {cfg.get('width', config.get('width'))} --data {cfg.get('data', '?')} "
        f"--val {cfg.get('val', '?')} --size {cfg.get('size', config.get('input_size'))} "
        f"--crop {cfg.get('crop', '?')} --batch {cfg.get('batch', '?')} --epochs {cfg.get('epochs', '?')} "
        f"--lr {cfg.get('lr', '?')} --lr-steps {','.join(str(e) for e in cfg.get('lr_steps', []))} "
        f"--vessel-loss {cfg.get('loss', '?')} --seed {cfg.get('seed', 0)} --threads 1 --out RUN_DIR"
    )
    return f"""# Model card: DRIU vessel segmentation on synthetic photographs (`driu_synthetic.pt`)

A DRIU network (Maninis et al., MICCAI 2016: a VGG-16 base to conv4_3 with four side outputs, upsampled and
fused into one vessel logit per pixel) at width {config.get("width")} ({n_params:,} parameters), trained from
scratch on synthetic fundus photographs (`retinaview synth`) and their vessel masks. Input: the `vessels`
preprocessing chain (green channel, denoised, inverted, illumination-equalised) at
{config.get("input_size")} px. Intended use: demonstration and research on how a segmentation network's layers
and side outputs contribute, not a medical device; it has never seen a real photograph.

## Training

```sh
{command}
python -m retinaview.train.bundle_vessels RUN_DIR    # evaluate, re-weight, write this card and the model
```

Random {cfg.get("crop", "?")} px crops centred in the field of view, quarter turns and flips, HED's
class-balanced cross-entropy inside the field of view, Adam. The bundled weights are the epoch with the best
validation F1; the probability threshold ({config.get("threshold", 0.5):.2f}) was chosen on the validation set
(a class-balanced loss moves the best threshold well above 0.5) and is stored in the model's config.

{curve}

## Test figures ({test_source}: a seed never used in training or validation)

Inside the field of view, mean over {int(test["images"])} images, at the stored threshold:

| F1 (Dice) | mIoU (vessel and background IoU averaged) | vessel IoU | AUC | accuracy | sensitivity | specificity |
| --- | --- | --- | --- | --- | --- | --- |
| {test["f1"]:.3f} | {test["miou"]:.3f} | {test["iou_vessel"]:.3f} | {test["auc"]:.3f} | {test["accuracy"]:.3f} | {test["sensitivity"]:.3f} | {test["specificity"]:.3f} |

Reproduce: `retinaview evaluate --task vessels --model resources/models/driu_synthetic.pt --data {test_source}`.

## Side-output re-weighting ({reweight_source})

Each side output multiplied by a factor before the fuse layer, the others left at 1 (the experiment of the
Grad-CAM study of DRIU); factor 1 is the network as trained. `retinaview vessels-reweight --data
{reweight_source}` reproduces it.

{by_branch}

## Limits

The synthetic vessel tree is sparser and cleaner than a real one (no central reflex, no pathology on vessels);
figures on real photographs (DRIVE, STARE) will be lower. Measured {time.strftime("%Y-%m-%d")}.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m retinaview.train.bundle_vessels")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--test", default="synth:100:5000")
    p.add_argument("--reweight", default="synth:20:6000")
    p.add_argument("--out", type=Path, default=BUNDLED)
    p.add_argument("--card", type=Path, default=CARD)
    args = p.parse_args(argv)
    best = args.run_dir / "best.pt"
    model, spec, payload = load_checkpoint(best)
    model.spec = spec
    model.eval()
    last = args.run_dir / "last.pt"
    if last.exists():
        payload["train_state"] = load_checkpoint(last)[2].get("train_state", {})

    def bar(done: int, total: int) -> None:
        print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True)

    test = evaluate_vessels(model, spec, args.test, progress=bar)
    print(file=sys.stderr)
    rows = reweight_experiment(model, spec, args.reweight, list(FACTORS), progress=bar)
    print(file=sys.stderr)
    save_checkpoint(
        args.out,
        model,
        spec,
        metrics={"test": test, "test_source": args.test, "reweight": rows},
        provenance={"run": args.run_dir.name, "task": "vessels"},
    )
    args.card.write_text(model_card(args.run_dir, test, args.test, rows, args.reweight, payload))
    print(json.dumps({"test": test}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
