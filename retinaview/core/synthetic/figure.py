"""A comparison figure: the real scikit-image fundus photograph beside synthetic grades 0-4 (for the README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from retinaview.core.synthetic.generator import generate
from retinaview.core.synthetic.grading import GRADE_NAMES


def comparison_figure(path, seed: int = 11, size: int = 640, thumb: int = 400) -> Path:
    """Write a 3x2 PNG grid: ``skimage.data.retina()`` (real, CC0) and synthetic grades 0..4."""
    import skimage.data

    real = np.asarray(
        Image.fromarray(skimage.data.retina()).resize((size, size), Image.Resampling.LANCZOS)
    )
    tiles = [("real (skimage.data.retina)", real)]
    for g in range(5):
        tiles.append(
            (f"synthetic grade {g}: {GRADE_NAMES[g]}", generate(seed + g, grade=g, size=size).image)
        )
    pad = 28
    canvas = Image.new("RGB", (3 * thumb, 2 * (thumb + pad)), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (label, img) in enumerate(tiles):
        x, y = (i % 3) * thumb, (i // 3) * (thumb + pad)
        canvas.paste(
            Image.fromarray(img).resize((thumb, thumb), Image.Resampling.LANCZOS), (x, y + pad)
        )
        draw.text((x + 8, y + 8), label, fill=(230, 230, 230))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


if __name__ == "__main__":  # python -m retinaview.core.synthetic.figure [PATH]
    import sys

    print(
        comparison_figure(sys.argv[1] if len(sys.argv) > 1 else "docs/images/synthetic_vs_real.png")
    )
