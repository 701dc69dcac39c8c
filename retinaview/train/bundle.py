"""Make the bundled default model: evaluate a trained checkpoint, record its figures, write its model card.

``python -m retinaview.train.bundle RUN_DIR`` takes ``RUN_DIR/best.pt``, grades a synthetic test set whose seed
was never used in training, measures lesion localisation, and writes ``resources/models/paper17_synthetic.pt``
(weights + the figures in its metrics) and ``resources/models/MODEL_CARD.md``.

``--test-report FILE`` takes the test figures from ``retinaview evaluate --json`` output instead of grading the
test set again, and ``--keep-localisation`` keeps the localisation figures of the bundled model when its
weights are the run's: a re-measurement after a change of the input path costs one evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from retinaview.core.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from retinaview.core.common.errors import DataError
from retinaview.core.model_loading import DEFAULT_MODEL

TEST_DATA = "synth:500:2000"
SMOKE_DATA = "synth:40:2001"  # small enough for a test to re-grade in well under a minute
TEST_KEYS = ("qwk", "accuracy", "balanced_accuracy", "confusion", "per_class", "referable", "n")


def bundle(
    run_dir: Path,
    out: Path = DEFAULT_MODEL,
    test: str = TEST_DATA,
    localisation: int = 5,
    *,
    test_report: dict[str, Any] | None = None,
    keep_localisation: bool = False,
    notes: str = "",
) -> dict[str, Any]:
    """Evaluate ``run_dir/best.pt`` and write it with its figures to ``out`` and the card beside it.

    Parameters
    ----------
    run_dir : pathlib.Path
        A training run folder (``best.pt``, ``metrics.jsonl``).
    out : pathlib.Path
        The bundled model file to write; ``MODEL_CARD.md`` goes into the same folder.
    test : str
        The test data source, a seed never used in training or validation.
    localisation : int
        Synthetic images per grade 1-4 for the lesion localisation figures; 0 skips them.
    test_report : dict, optional
        ``retinaview evaluate --json`` output on ``test`` for these weights, used instead of grading again.
    keep_localisation : bool
        Keep the localisation figures of the model now at ``out``; its weights must be the run's.
    notes : str
        A paragraph for the card's training section (what the figures alone do not say).

    Returns
    -------
    dict
        The metrics stored in the checkpoint.
    """
    from retinaview.train.evaluate import evaluate
    from retinaview.train.localisation import lesion_localisation

    model, spec, payload = load_checkpoint(run_dir / "best.pt")
    model.spec = spec
    model.eval()
    history = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line
    ]
    t0 = time.monotonic()
    if test_report is not None and test_report.get("data") != test:
        raise DataError(f"the test report is on {test_report.get('data')}, not on {test}")
    test_report = test_report or evaluate(model, test)
    if "balanced_accuracy" not in test_report:
        from retinaview.train.metrics import balanced_accuracy

        test_report["balanced_accuracy"] = balanced_accuracy(test_report["per_class"])
    smoke = evaluate(model, SMOKE_DATA)
    if keep_localisation:
        loc = _bundled_localisation(out, payload["state_dict"])
    else:
        loc = lesion_localisation(model, per_grade=localisation) if localisation else None
    metrics: dict[str, Any] = {
        "validation": payload.get("metrics", {}),
        "test": {k: test_report[k] for k in TEST_KEYS},
        "test_data": test,
        "smoke": {"data": SMOKE_DATA, "qwk": smoke["qwk"], "accuracy": smoke["accuracy"]},
        "localisation": loc,
        "epochs": len(history),
        "evaluated_seconds": time.monotonic() - t0,
        "notes": notes,
    }
    provenance = dict(payload.get("provenance", {}))
    save_checkpoint(out, model, spec, metrics=metrics, provenance=provenance)
    (out.parent / "MODEL_CARD.md").write_text(model_card(metrics, provenance, history))
    return metrics


def _bundled_localisation(out: Path, state_dict: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """The localisation figures stored in ``out``, after checking that it holds the same weights."""
    old = read_checkpoint(out)
    same = old["state_dict"].keys() == state_dict.keys() and all(
        torch.equal(old["state_dict"][k], v) for k, v in state_dict.items()
    )
    if not same:
        raise DataError(
            f"{out}: other weights than the run's best.pt; measure the localisation again"
        )
    return old.get("metrics", {}).get("localisation")


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def model_card(
    metrics: dict[str, Any], provenance: dict[str, Any], history: list[dict[str, Any]]
) -> str:
    """The model card (Markdown) of a bundled model.

    Parameters
    ----------
    metrics : dict
        As `bundle` stores them: ``test`` (a grading report), ``test_data``, ``validation``, ``epochs`` and
        optionally ``localisation``.
    provenance : dict
        The training command and data descriptions from the checkpoint.
    history : list of dict
        The rows of the run's ``metrics.jsonl``.

    Returns
    -------
    str
    """
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
        *([metrics["notes"], ""] if metrics.get("notes") else []),
        "## Results",
        "",
        f"Test set `{metrics['test_data']}` (n = {test['n']}, a seed never used in training or validation;",
        "EyePACS-like class frequencies), graded on the viewer's input path: each generated photograph goes",
        "through the model's preprocessing chain (field-of-view crop included) as an opened photograph does:",
        "",
        _row(
            [
                "QWK",
                "accuracy",
                "balanced accuracy",
                "referable DR sensitivity",
                "specificity",
                "AUC",
            ]
        ),
        _row(["---"] * 6),
        _row(
            [
                f"{test['qwk']:.3f}",
                f"{test['accuracy']:.3f}",
                _fmt(test.get("balanced_accuracy")),
                _fmt(ref.get("sensitivity")),
                _fmt(ref.get("specificity")),
                _fmt(ref.get("auc")),
            ]
        ),
        "",
        "Accuracy is carried by grade 0, the most common grade; the recall of each grade (the share of its",
        "images graded right) and the balanced accuracy (their mean) show how the rarer grades fare:",
        "",
        _row(["grade", "images", "recall", "specificity"]),
        _row(["---"] * 4),
        *[
            _row([c["grade"], c["support"], _fmt(c["sensitivity"]), _fmt(c["specificity"])])
            for c in test["per_class"]
        ],
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


def _data(provenance: dict[str, Any], key: str) -> str:
    data = provenance.get("data")
    return str(data.get(key, "?")) if isinstance(data, dict) else str(data)


def _fmt(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def main(argv: list[str] | None = None) -> int:
    """``python -m retinaview.train.bundle``: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--test", default=TEST_DATA)
    p.add_argument("--localisation", type=int, default=5)
    p.add_argument("--test-report", type=Path, help="`retinaview evaluate --json` output on --test")
    p.add_argument("--keep-localisation", action="store_true")
    p.add_argument("--notes", default="", help="a paragraph for the card's training section")
    args = p.parse_args(argv)
    report = json.loads(args.test_report.read_text()) if args.test_report else None
    metrics = bundle(
        args.run_dir,
        args.out,
        args.test,
        args.localisation,
        test_report=report,
        keep_localisation=args.keep_localisation,
        notes=args.notes,
    )
    print(json.dumps({k: metrics[k] for k in ("test", "smoke", "epochs")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
