"""Make the bundled default model: evaluate a trained checkpoint, record its figures, write its model card.

``python -m retinaview.train.bundle RUN_DIR`` takes ``RUN_DIR/best.pt``, grades a synthetic test set whose seed
was never used in training, measures lesion localisation, and writes ``resources/models/paper17_synthetic.pt``
(weights + the figures in its metrics) and ``resources/models/MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from retinaview.core.checkpoint import load_checkpoint, save_checkpoint
from retinaview.core.model_loading import DEFAULT_MODEL

TEST_DATA = "synth:500:2000"
SMOKE_DATA = "synth:40:2001"  # small enough for a test to re-grade in well under a minute


def bundle(
    run_dir: Path, out: Path = DEFAULT_MODEL, test: str = TEST_DATA, localisation: int = 5
) -> dict:
    from retinaview.train.evaluate import evaluate
    from retinaview.train.localisation import lesion_localisation

    model, spec, payload = load_checkpoint(run_dir / "best.pt")
    model.spec = spec
    model.eval()
    history = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line
    ]
    t0 = time.monotonic()
    test_report = evaluate(model, test)
    smoke = evaluate(model, SMOKE_DATA)
    loc = lesion_localisation(model, per_grade=localisation) if localisation else None
    metrics: dict[str, Any] = {
        "validation": payload.get("metrics", {}),
        "test": {
            k: test_report[k]
            for k in ("qwk", "accuracy", "confusion", "per_class", "referable", "n")
        },
        "test_data": test,
        "smoke": {"data": SMOKE_DATA, "qwk": smoke["qwk"], "accuracy": smoke["accuracy"]},
        "localisation": loc,
        "epochs": len(history),
        "evaluated_seconds": time.monotonic() - t0,
    }
    provenance = dict(payload.get("provenance", {}))
    save_checkpoint(out, model, spec, metrics=metrics, provenance=provenance)
    (out.parent / "MODEL_CARD.md").write_text(model_card(metrics, provenance, history))
    return metrics


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def model_card(metrics: dict, provenance: dict, history: list[dict]) -> str:
    test = metrics["test"]
    ref = test["referable"]
    val = metrics["validation"]
    lines = [
        "# Model card: paper17_synthetic.pt",
        "",
        "The default model of retinaview: the paper's 17-layer diabetic-retinopathy grader (`paper17`, 640 px input,",
        "385,077 parameters) trained from scratch on retinaview's synthetic fundus photographs.",
        "",
        "**Intended use: demonstration and research on explanation methods. Not a medical device. Not trained or",
        "validated on photographs of real patients: its grades of real photographs mean nothing clinically.**",
        "",
        "## Training",
        "",
        f"- Command: `{provenance.get('command', 'see metrics.jsonl')}`",
        f"- Training data: `{_data(provenance, 'train')}`; validation: `{_data(provenance, 'val')}`",
        f"- Seed: {provenance.get('seed', 0)}; epochs run: {metrics['epochs']}",
        "- Adam (lr 3e-4, steps down x0.1), batch 15, Kaiming initialisation, weighted-kappa loss log(1 - kappa)",
        "  plus cross-entropy, rotation/flip/brightness/contrast augmentation, class-balanced sampling.",
        "",
        "## Results",
        "",
        f"Test set `{metrics['test_data']}` (n = {test['n']}, a seed never used in training or validation;",
        "EyePACS-like class frequencies):",
        "",
        _row(["QWK", "accuracy", "referable DR sensitivity", "specificity", "AUC"]),
        _row(["---"] * 5),
        _row(
            [
                f"{test['qwk']:.3f}",
                f"{test['accuracy']:.3f}",
                f"{ref.get('sensitivity', float('nan')):.3f}",
                f"{ref.get('specificity', float('nan')):.3f}",
                f"{ref.get('auc', float('nan')):.3f}",
            ]
        ),
        "",
        f"Best validation QWK during training: {val.get('val_qwk', float('nan')):.3f} "
        f"(epoch {val.get('epoch', '?')}, `{_data(provenance, 'val')}`, n = {val.get('val_n', '?')}).",
        "",
        "Confusion matrix (rows: true grade, columns: predicted):",
        "",
        _row(["true \\ pred", 0, 1, 2, 3, 4]),
        _row(["---"] * 6),
        *[_row([g, *row]) for g, row in enumerate(test["confusion"])],
        "",
    ]
    sens90 = ref.get("sensitivity_at_90_specificity")
    if sens90 is not None:
        lines += [f"Referable DR sensitivity at 90 % specificity: {sens90:.3f}.", ""]
    loc = metrics.get("localisation")
    if loc:
        lines += [
            "## Does the explanation find the lesions?",
            "",
            "Share of the positive RF score (total map of the predicted class) that lies on the synthetic lesion",
            f"masks (dilated by {loc['margin_px']} px), next to the share of the field of view they cover:",
            "",
            _row(["grade", "positive score on lesions", "lesion area", "enrichment", "n"]),
            _row(["---"] * 5),
            *[
                _row(
                    [
                        g,
                        f"{r['inside_fraction']:.3f}",
                        f"{r['lesion_area_fraction']:.3f}",
                        f"{r['enrichment']:.1f}x",
                        r["n"],
                    ]
                )
                for g, r in loc["per_grade"].items()
            ],  # fmt: skip
            "",
        ]
    if history:
        lines += [
            "## Learning curve",
            "",
            _row(["epoch", "train loss", "train QWK", "val QWK", "val accuracy", "images/s"]),
            _row(["---"] * 6),
        ]
        for h in history:
            lines.append(
                _row(
                    [
                        h.get("epoch"),
                        _fmt(h.get("train_loss")),
                        _fmt(h.get("train_qwk")),
                        _fmt(h.get("val_qwk")),
                        _fmt(h.get("val_accuracy")),
                        _fmt(h.get("images_per_s"), ".2f"),
                    ]
                )
            )
        lines.append("")
    lines += [
        "## Reproduce",
        "",
        "```sh",
        f"retinaview evaluate --model default --data {metrics['test_data']} --localisation 5",
        "```",
        "",
    ]
    return "\n".join(lines)


def _data(provenance: dict, key: str) -> str:
    data = provenance.get("data")
    return str(data.get(key, "?")) if isinstance(data, dict) else str(data)


def _fmt(v, fmt: str = ".3f") -> str:
    return "" if v is None else format(v, fmt)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--test", default=TEST_DATA)
    p.add_argument("--localisation", type=int, default=5)
    args = p.parse_args(argv)
    metrics = bundle(args.run_dir, args.out, args.test, args.localisation)
    print(json.dumps({k: metrics[k] for k in ("test", "smoke", "epochs")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
