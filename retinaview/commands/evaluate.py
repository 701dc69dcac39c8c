"""``retinaview evaluate``: grade a labelled data set with a model and report the grading metrics."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser to ``subparsers`` (`retinaview.cli`)."""
    p = subparsers.add_parser(
        "evaluate",
        help="QWK, accuracy, confusion, referable-DR sensitivity/specificity/AUC of a model",
        description=(
            "Evaluate a model on a labelled folder (labels CSV) or on synthetic images: synth:N:SEED "
            "(single images) or synthpairs:P:SEED (P patients, both eyes; adds per-patient QWK)."
        ),
    )
    p.add_argument(
        "--task",
        choices=("grading", "vessels"),
        default="grading",
        help="grading (default) or vessels: F1, mIoU, AUC inside the field of view of synth:N:SEED",
    )
    p.add_argument("--model", default="default", help="checkpoint file or 'default' (bundled)")
    p.add_argument("--data", required=True, help="DIR, synth:N:SEED or synthpairs:P:SEED")
    p.add_argument("--labels", help="labels CSV of DIR (default: labels.csv etc. in DIR)")
    p.add_argument("--patient-head", help="both-eyes head from `retinaview train-patient`")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument(
        "--workers", type=int, help="data-loader processes (default 1 on small machines)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--localisation",
        type=int,
        default=0,
        metavar="K",
        help="also explain K synthetic images of each grade 1-4 and report the share of positive "
        "score inside the lesion masks",
    )
    p.set_defaults(func=run)


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def format_report(r: dict[str, Any]) -> str:
    """The text report of an `retinaview.train.evaluate.evaluate` result, one figure group a line."""
    lines = [
        f"model {r['model']}",
        f"data {r['data']}: {r['n']} images",
        f"QWK {_f(r['qwk'])}  accuracy {_f(r['accuracy'])}  balanced accuracy "
        f"{_f(r['balanced_accuracy'])}",
        "recall per grade: "
        + ", ".join(f"{c['grade']}: {_f(c['sensitivity'])}" for c in r["per_class"]),
        "confusion (rows true grade, columns predicted):",
    ]
    k = len(r["confusion"])
    lines.append("        " + "".join(f"{j:>7d}" for j in range(k)))
    for i, row in enumerate(r["confusion"]):
        lines.append(f"  {i:>5d} " + "".join(f"{v:>7d}" for v in row))
    lines.append("grade  support  recall (sensitivity)  specificity")
    for c in r["per_class"]:
        lines.append(
            f"  {c['grade']:>3d}  {c['support']:>7d}  {_f(c['sensitivity']):>20}  "
            f"{_f(c['specificity']):>11}"
        )
    ref = r["referable"]
    lines.append(
        f"referable DR (grade >= 2): sensitivity {_f(ref['sensitivity'])} specificity "
        f"{_f(ref['specificity'])} AUC {_f(ref['auc'])} "
        f"sensitivity at 90% specificity {_f(ref['sensitivity_at_90_specificity'])}"
    )
    pat = r.get("patients")
    if pat:
        text = (
            f"patients with both eyes: {pat['pairs']}: per-eye QWK {_f(pat['per_eye_qwk'])}, "
            f"per-patient QWK (worse eye) {_f(pat['per_patient_qwk'])}"
        )
        if "both_eyes_qwk" in pat:
            text += f", both-eyes head per-eye QWK {_f(pat['both_eyes_qwk'])}"
        lines.append(text)
    loc = r.get("localisation")
    if loc:
        lines.append(
            f"lesion localisation (predicted class, total RF map): {_f(loc['inside_fraction'])} of the "
            f"positive score on lesions covering {_f(loc['lesion_area_fraction'])} of the field of view "
            f"(enrichment {_f(loc['enrichment'], '.1f')}x)"
        )
        for grade, row in loc["per_grade"].items():
            lines.append(
                f"  grade {grade}: {_f(row['inside_fraction'])} on {_f(row['lesion_area_fraction'])} "
                f"of the FOV ({_f(row['enrichment'], '.1f')}x, n={row['n']})"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command with the parsed ``args``; returns the exit code."""
    import torch

    from retinaview.commands._progress import Progress
    from retinaview.train.evaluate import evaluate

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.task == "vessels":
        return run_vessels(args)
    with Progress(0, "grading", enabled=False if args.json else None) as progress:
        report = evaluate(
            args.model,
            args.data,
            labels=args.labels,
            batch=args.batch,
            device=None if args.device == "auto" else args.device,
            workers=args.workers,
            head_path=args.patient_head,
            progress=progress.callback,
        )
    if args.localisation > 0:
        from retinaview.core.model_loading import load_model
        from retinaview.train.localisation import lesion_localisation

        model = load_model(args.model, device=None if args.device == "auto" else args.device)
        report["localisation"] = lesion_localisation(model, per_grade=args.localisation)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def run_vessels(args: argparse.Namespace) -> int:
    """``--task vessels``: mean F1, mIoU, AUC and accuracy inside the field of view (the model's threshold)."""
    from retinaview.commands._progress import Progress
    from retinaview.core.segment import load_vessel_model
    from retinaview.train.vessels import evaluate_vessels, model_threshold

    model = load_vessel_model(args.model, device=None if args.device == "auto" else args.device)
    with Progress(0, "segmenting", enabled=False if args.json else None) as progress:
        scores = evaluate_vessels(model, model.spec, args.data, progress=progress.callback)
    report = {
        "model": model.spec.source,
        "data": args.data,
        "threshold": model_threshold(model.spec),
        **scores,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.data}: {int(scores['images'])} images, inside the field of view, threshold "
            f"{report['threshold']:.2f}"
        )
        for key in ("f1", "miou", "iou_vessel", "auc", "accuracy", "sensitivity", "specificity"):
            print(f"  {key:<12} {scores[key]:.4f}")
    return 0
