"""`retinaview explain IMAGE...`: maps of every class by any explanation method (RF score propagation by
default, with every layer), to npz, PNG and JSON lines."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain images: npz of every map, PNG overlay of the predicted class",
        description="Explain fundus photographs (default: exact RF score propagation; --method for the "
        "others). For each IMAGE writes DIR/<stem>.npz (logits, probs, the method's maps, fov; for rfscore "
        "also bias, input, total, layers, si_k, sk_k, rf_k, jump_k, offset_k, features) and "
        "DIR/<stem>_c<C>.png, the map of the predicted class (or the class explained) at n sigma over the "
        "photograph, drawn as the viewer draws it (smoothed unless --raw).",
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
        "--mode",
        choices=("positive", "negative", "absolute"),
        default="positive",
        help="PNG: pixels for the class (positive), against it (negative) or both (absolute)",
    )
    p.add_argument(
        "--raw", action="store_true", help="PNG: the raw per-pixel map instead of the smoothed one"
    )
    p.add_argument(
        "--sigma-factor", type=float, default=0.25, help="Gaussian sigma as a fraction of the RF"
    )
    p.add_argument("--no-npz", action="store_true", help="skip the npz files")
    p.add_argument(
        "--method",
        default="rfscore",
        metavar="NAME",
        help="rfscore (default), saliency, gradxinput, ig, layer_ig, ig_counterfactual, cam, gradcam or "
        "contrast",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the method, repeatable: e.g. steps=64, quadrature=trapezoid, layer=body.layer9, "
        "relu=false, factors=0,0.5,1, classes=predicted (a wrong key lists the method's own)",
    )
    p.set_defaults(func=run)


def parse_value(text: str):
    """A --param value: JSON (numbers, true/false, null, lists), a comma-separated list of numbers, or text."""
    for candidate in (text, text.lower(), f"[{text}]" if "," in text else None):
        if candidate is None:
            continue
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return text


def method_params_from(args: argparse.Namespace) -> dict:
    """The method's parameters from ``--param KEY=VALUE`` (and ``--sigma-factor`` for rfscore).

    Raises a `RetinaviewError` naming the method's parameters for an unknown key or a malformed item.
    """
    from retinaview.core.api import check_params, method_params
    from retinaview.core.common.errors import RetinaviewError

    known = method_params(args.method)
    params = {"sigma_factor": args.sigma_factor} if "sigma_factor" in known else {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RetinaviewError(
                f"--param {item!r} is not KEY=VALUE (choices of KEY: {', '.join(known)})"
            )
        params[key.strip().replace("-", "_")] = parse_value(value.strip())
    check_params(args.method, params)
    return params


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from retinaview.commands._progress import Progress
    from retinaview.core.api import explain, load_model
    from retinaview.core.common.errors import RetinaviewError
    from retinaview.core.common.paths import check_output_folder
    from retinaview.core.common.render import overlay, smooth
    from retinaview.core.quality import assess_quality

    check_output_folder(args.out)
    try:
        params = method_params_from(args)
    except RetinaviewError as exc:
        print(f"retinaview: {exc}", file=sys.stderr)
        return 2
    model = load_model(args.model, device=args.device)
    print(f"retinaview: model {model.spec.arch}: {model.spec.source}", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    status = 0
    progress = Progress(len(args.images), "explain")
    for path in args.images:
        try:
            result = explain(model, path, method=args.method, **params)
        except RetinaviewError as exc:
            progress.message(f"retinaview: {exc}")
            status = 2
            continue
        stem = Path(path).stem
        grade = result.grade
        # The first class computed: the predicted one, or the one a single-class method explained.
        shown = result.classes[0] if result.classes else grade
        target = out / f"{stem}_c{shown}.png"
        try:
            if not args.no_npz:
                target = out / f"{stem}.npz"
                np.savez(target, **result.to_npz_dict())
                target = out / f"{stem}_c{shown}.png"
            score = result.maps[shown] if args.raw else smooth(result.maps[shown], result.fov)
            png = overlay(result.display, score, result.fov, n=args.threshold, mode=args.mode)
            Image.fromarray(png).save(target)
        except OSError as exc:
            # The folder was checked before the model loaded; a name taken by a folder, a full disk
            # or a file system gone read-only since still ends in one line.
            progress.message(f"retinaview: {target}: cannot write ({exc.strerror or exc})")
            status = 2
            continue
        if args.json:
            quality = assess_quality(path)
            line = {
                "file": str(path),
                "grade": grade,
                "class_name": result.class_names[grade],
                "probs": [round(float(p), 6) for p in result.probs],
                "logits": [float(v) for v in result.logits],
                "residual": result.residual(),
                "method": result.method,
                "check_name": result.check_name,
                "check": result.check if math.isfinite(result.check) else None,
                "seconds": round(result.seconds, 3),
                "model": model.spec.source,
                "quality": {"gradable": quality.gradable, "reason": quality.reason},
            }
            print(json.dumps(line), flush=True)
        progress.update()
    progress.close()
    return status
