"""``retinaview synth``: write a folder of synthetic fundus photographs with labels and ground truth."""

from __future__ import annotations

import argparse
import sys

from retinaview.commands._progress import Progress
from retinaview.core.common.errors import DataError, os_error_message


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser to ``subparsers`` (`retinaview.cli`)."""
    p = subparsers.add_parser(
        "synth",
        help="write synthetic diabetic-retinopathy photographs with labels and ground truth",
        description=(
            "Write N synthetic fundus photographs into DIR with an EyePACS labels.csv (image,level) and, per "
            "image, groundtruth/<name>.npz (grade, lesion masks, vessels, FOV, disc and fovea centres). "
            "Deterministic for a given seed."
        ),
    )
    p.add_argument("--n", type=int, required=True, metavar="N", help="number of images")
    p.add_argument("--seed", type=int, required=True, metavar="S", help="data-set seed (>= 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--size", type=int, default=640, help="image side in pixels (default 640)")
    p.add_argument(
        "--patients",
        action="store_true",
        help="write left/right pairs {patient}_left/{patient}_right with correlated grades",
    )
    p.add_argument(
        "--format", choices=("png", "jpg"), default="png", help="image format (jpg: quality 95)"
    )
    p.add_argument(
        "--frequencies",
        default="0.73,0.07,0.15,0.025,0.025",
        metavar="F0,F1,F2,F3,F4",
        help="class frequencies of grades 0-4 (default EyePACS-like 0.73,0.07,0.15,0.025,0.025)",
    )
    p.set_defaults(func=run)


def parse_frequencies(text: str) -> tuple[float, ...]:
    """Five non-negative grade frequencies with a positive sum from ``F0,F1,F2,F3,F4``; `DataError` else."""
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise DataError(
            f"--frequencies: expected five numbers separated by commas, got {text!r}"
        ) from None
    if (
        len(values) != 5
        or any(not (v >= 0.0) or v == float("inf") for v in values)
        or sum(values) <= 0
    ):
        raise DataError(
            f"--frequencies: expected five non-negative numbers with a positive sum, got {text!r}"
        )
    return values


def run(args: argparse.Namespace) -> int:
    """Run the sub-command with the parsed ``args``; returns the exit code."""

    from retinaview.core.common.paths import check_output_folder
    from retinaview.core.synthetic import write_dataset

    freqs = parse_frequencies(args.frequencies)
    if args.n < 1:
        raise DataError(f"--n must be at least 1, got {args.n}")
    if args.seed < 0:
        raise DataError(f"--seed must be non-negative, got {args.seed}")
    if not 64 <= args.size <= 4096:
        raise DataError(f"--size must be between 64 and 4096 pixels, got {args.size}")
    out = check_output_folder(args.out)
    total = args.n + (args.n % 2 if args.patients else 0)
    progress = Progress(total, "synth", enabled=None if total >= 20 else False)
    try:
        labels = write_dataset(
            out,
            n=args.n,
            seed=args.seed,
            size=args.size,
            patients=args.patients,
            frequencies=freqs,
            fmt=args.format,
            progress=progress.callback,
        )
    except ValueError as exc:
        raise DataError(str(exc)) from None
    except OSError as exc:
        raise DataError(os_error_message(exc.filename or out, "write", exc)) from None
    finally:
        progress.close()
    print(f"wrote {total} images, {labels} and {out / 'groundtruth'}", file=sys.stderr)
    return 0
