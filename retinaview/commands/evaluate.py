"""``retinaview evaluate``: grade a labelled data set with a model and report the grading metrics."""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="QWK, accuracy, confusion, referable-DR sensitivity/specificity/AUC of a model",
        description=(
            "Evaluate a model on a labelled folder (labels CSV) or on synthetic images: synth:N:SEED "
            "(single images) or synthpairs:P:SEED (P patients, both eyes; adds per-patient QWK)."
        ),
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
    p.set_defaults(func=run)


def _f(v, fmt=".3f") -> str:
    return "-" if v is None else format(v, fmt)


def format_report(r: dict) -> str:
    lines = [
        f"model {r['model']}",
        f"data {r['data']}: {r['n']} images",
        f"QWK {_f(r['qwk'])}  accuracy {_f(r['accuracy'])}",
        "confusion (rows true grade, columns predicted):",
    ]
    k = len(r["confusion"])
    lines.append("        " + "".join(f"{j:>7d}" for j in range(k)))
    for i, row in enumerate(r["confusion"]):
        lines.append(f"  {i:>5d} " + "".join(f"{v:>7d}" for v in row))
    lines.append("grade  support  sensitivity  specificity")
    for c in r["per_class"]:
        lines.append(
            f"  {c['grade']:>3d}  {c['support']:>7d}  {_f(c['sensitivity']):>11}  "
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
    return "\n".join(lines)


def run(args) -> int:
    import torch

    from retinaview.train.evaluate import evaluate

    if args.threads:
        torch.set_num_threads(args.threads)
    progress = None
    if not args.json and sys.stderr.isatty():

        def progress(done: int, total: int) -> None:
            sys.stderr.write(f"\rgrading {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    report = evaluate(
        args.model,
        args.data,
        labels=args.labels,
        batch=args.batch,
        device=None if args.device == "auto" else args.device,
        workers=args.workers,
        head_path=args.patient_head,
        progress=progress,
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0
