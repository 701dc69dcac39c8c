"""`retinaview segment IMAGE...`: vessel probability maps (PNG at the photograph's resolution, npz, JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "segment",
        help="segment retinal vessels: probability PNG, npz and JSON lines",
        description="Segment the vessels of fundus photographs with a DRIU network (Maninis et al. 2016). "
        "For each IMAGE writes DIR/<stem>_vessels.png (vessel probability 0-255 at the photograph's "
        "resolution) and DIR/<stem>_vessels.npz (logits, probability, fov at model resolution).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (jpg, png, tif, bmp)")
    p.add_argument(
        "--model", default="default", help="'default' (the bundled vessel model) or a checkpoint"
    )
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: current)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image on stdout")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-npz", action="store_true", help="skip the npz files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from retinaview.commands._progress import Progress
    from retinaview.core.common.errors import RetinaviewError
    from retinaview.core.segment import load_vessel_model, segment

    model = load_vessel_model(args.model, device=args.device)
    print(f"retinaview: vessel model {model.spec.arch}: {model.spec.source}", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    status = 0
    progress = Progress(len(args.images), "segment")
    for path in args.images:
        try:
            seg = segment(model, path)
        except RetinaviewError as exc:
            progress.message(f"retinaview: {exc}")
            status = 2
            continue
        stem = Path(path).stem
        photo = np.clip(seg.on_photo() * 255.0 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(photo).save(out / f"{stem}_vessels.png")
        if not args.no_npz:
            np.savez_compressed(
                out / f"{stem}_vessels.npz",
                logits=seg.logits,
                probability=seg.probability,
                fov=seg.fov,
            )
        if args.json:
            line = {
                "file": str(path),
                "vessel_area_fraction": round(seg.area_fraction(), 6),
                "seconds": round(seg.seconds, 3),
                "model": model.spec.source,
            }
            print(json.dumps(line), flush=True)
        progress.update()
    progress.close()
    return status
