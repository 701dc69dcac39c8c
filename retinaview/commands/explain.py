"""`retinaview explain IMAGE...`: RF score maps of every class and layer, to npz, PNG and JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain images: npz of every map, PNG overlay of the predicted class",
        description="Explain fundus photographs with exact RF score propagation. For each IMAGE writes "
        "DIR/<stem>.npz (logits, probs, bias, input, total, fov, layers, si_k, sk_k, rf_k, jump_k, offset_k, "
        "features) and DIR/<stem>_c<C>.png, the predicted class's total map at n sigma over the photograph.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (jpg, png, tif, bmp)")
    p.add_argument(
        "--model", default="default", help="'default', an architecture name, or a checkpoint"
    )
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: current)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image on stdout")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threshold", type=float, default=2.0, metavar="N", help="n sigma for the PNG")
    p.add_argument(
        "--sigma-factor", type=float, default=0.25, help="Gaussian sigma as a fraction of the RF"
    )
    p.add_argument("--no-npz", action="store_true", help="skip the npz files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from retinaview.commands._progress import Progress
    from retinaview.core.api import explain, load_model
    from retinaview.core.common.errors import RetinaviewError
    from retinaview.core.common.render import overlay

    model = load_model(args.model, device=args.device)
    print(f"retinaview: model {model.spec.arch}: {model.spec.source}", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    status = 0
    progress = Progress(len(args.images), "explain")
    for path in args.images:
        try:
            result = explain(model, path, sigma_factor=args.sigma_factor)
        except RetinaviewError as exc:
            progress.message(f"retinaview: {exc}")
            status = 2
            continue
        stem = Path(path).stem
        if not args.no_npz:
            np.savez(out / f"{stem}.npz", **result.to_npz_dict())
        grade = result.grade
        png = overlay(result.display, result.maps[grade], result.fov, n=args.threshold)
        Image.fromarray(png).save(out / f"{stem}_c{grade}.png")
        if args.json:
            line = {
                "file": str(path),
                "grade": grade,
                "class_name": result.class_names[grade],
                "probs": [round(float(p), 6) for p in result.probs],
                "logits": [float(v) for v in result.logits],
                "residual": result.residual(),
                "method": result.method,
                "check_name": result.check_name,
                "check": result.check,
                "seconds": round(result.seconds, 3),
                "model": model.spec.source,
            }
            print(json.dumps(line), flush=True)
        progress.update()
    progress.close()
    return status
