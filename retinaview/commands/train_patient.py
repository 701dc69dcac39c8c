"""``retinaview train-patient``: fit the both-eyes head on the features of a trained paper17 model."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser to ``subparsers`` (`retinaview.cli`)."""
    p = subparsers.add_parser(
        "train-patient",
        help="train the both-eyes linear head (64 + 64 features of left and right eye)",
        description=(
            "Fit a linear classifier on the concatenated pooled features of a patient's two eyes "
            "(EyePACS names {patient}_left/{patient}_right, or synth:P:SEED for P synthetic patients) "
            "and report per-eye QWK of the model next to the head's."
        ),
    )
    p.add_argument("--model", required=True, help="checkpoint file or 'default'")
    p.add_argument("--data", required=True, help="DIR with labels CSV, or synth:P:SEED")
    p.add_argument("--labels", help="labels CSV of DIR")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the head (.pt)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="patients held out (0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command with the parsed ``args``; returns the exit code."""
    from retinaview.core.common.paths import check_output_file
    from retinaview.train.patient import train_patient

    check_output_file(args.out)
    report = train_patient(
        args.model,
        args.data,
        args.out,
        labels=args.labels,
        val_fraction=args.val_fraction,
        seed=args.seed,
        batch=args.batch,
        device=None if args.device == "auto" else args.device,
        workers=args.workers,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"both-eyes head written to {report['out']}")
    for part in ("train", "val"):
        if f"{part}_per_eye_qwk" in report:
            print(
                f"{part} ({report[part + '_patients']} patients): per-eye QWK "
                f"{report[part + '_per_eye_qwk']:.3f}, both-eyes head "
                f"{report[part + '_both_eyes_qwk']:.3f}"
            )
    return 0
