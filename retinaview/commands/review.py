"""`retinaview review export|import-labels|agreement|quality`: a review project without the GUI."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="review projects: export grades, import reference labels, agreement, quality gate",
        description="A review project holds a grader's decisions on a folder of images, in a database in "
        "the user's data directory ($XDG_DATA_HOME/retinaview/reviews). These actions work on it headless.",
    )
    ss = p.add_subparsers(dest="review_command", metavar="ACTION")

    e = ss.add_parser(
        "export", help="write the grades as CSV (image,level first, then every field)"
    )
    e.add_argument("folder", metavar="FOLDER", help="the project's image folder")
    e.add_argument("--out", required=True, metavar="CSV", help="CSV file to write")
    e.add_argument("--reviewer", help="only this reviewer's grades")
    e.set_defaults(func=run_export)

    i = ss.add_parser("import-labels", help="read a labels CSV as the project's ground truth")
    i.add_argument("folder", metavar="FOLDER", help="the project's image folder")
    i.add_argument(
        "labels", metavar="CSV", help="image,level (EyePACS) or id_code,diagnosis (APTOS)"
    )
    i.set_defaults(func=run_import)

    a = ss.add_parser(
        "agreement", help="reviewer vs model vs ground truth, overall and per reviewer"
    )
    a.add_argument("folder", metavar="FOLDER", help="the project's image folder")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="resamples for QWK")
    a.set_defaults(func=run_agreement)

    q = ss.add_parser("quality", help="the model-free quality gate for images or folders")
    q.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    q.add_argument("--json", action="store_true", help="one JSON object per image")
    q.add_argument(
        "--store", action="store_true", help="record each verdict in its folder's review project"
    )
    q.set_defaults(func=run_quality)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _open(folder: str):
    from retinaview.core.common.errors import DataError
    from retinaview.core.common.review_store import ReviewStore

    if not Path(folder).is_dir():
        raise DataError(f"{folder}: no such folder")
    return ReviewStore.for_folder(folder)


def run_export(args: argparse.Namespace) -> int:
    with _open(args.folder) as store:
        n = store.export_csv(args.out, reviewer=args.reviewer)
    print(f"retinaview: wrote {n} records to {args.out}", file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace) -> int:
    with _open(args.folder) as store:
        n = store.import_ground_truth(args.labels)
    print(f"retinaview: {n} reference labels from {args.labels}", file=sys.stderr)
    return 0


def _clean(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def run_agreement(args: argparse.Namespace) -> int:
    with _open(args.folder) as store:
        report = store.agreement(n_boot=args.bootstrap)
    if args.json:
        out = {
            who: {pair: {k: _clean(v) for k, v in a.as_dict().items()} for pair, a in pairs.items()}
            for who, pairs in report.items()
        }
        print(json.dumps(out))
        return 0
    for who, pairs in report.items():
        for pair, a in pairs.items():
            lo, hi = a.kappa_interval
            print(
                f"{who:<16} {pair:<18} n={a.n:<5} accuracy={a.accuracy.value:.3f} "
                f"QWK={a.kappa:.3f} [{lo:.3f}, {hi:.3f}] sensitivity={a.sensitivity.value:.3f} "
                f"specificity={a.specificity.value:.3f}"
            )
    return 0


def run_quality(args: argparse.Namespace) -> int:
    from retinaview.core.common.errors import RetinaviewError
    from retinaview.core.common.io import list_images
    from retinaview.core.common.review_store import ReviewStore
    from retinaview.core.quality import assess_quality

    status = 0
    for given in args.paths:
        files = list_images(given) if Path(given).is_dir() else [Path(given)]
        store = (
            ReviewStore.for_folder(given if Path(given).is_dir() else Path(given).parent)
            if (args.store)
            else None
        )
        try:
            for f in files:
                try:
                    verdict = assess_quality(f)
                except RetinaviewError as exc:
                    print(f"retinaview: {exc}", file=sys.stderr)
                    status = 2
                    continue
                if store is not None:
                    store.add_quality(f, verdict.gradable, verdict.reason, verdict.measures)
                if args.json:
                    print(json.dumps({"file": str(f), **verdict.as_dict()}), flush=True)
                else:
                    print(
                        f"{f}: {verdict.label}" + (f" ({verdict.detail})" if verdict.detail else "")
                    )
        finally:
            if store is not None:
                store.close()
    return status
