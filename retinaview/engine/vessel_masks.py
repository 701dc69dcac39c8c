"""Vessel masks that lie beside a photograph, for the live figures of the Vessels panel.

Two forms are read: ``<stem>_vessels.png`` in the photograph's folder (white = vessel; any image that
`retinaview.core.common.io.load_image` reads, thresholded at half its range), and the synthetic data set's
ground truth ``groundtruth/<stem>.npz`` (`retinaview.core.synthetic.writer.load_groundtruth`). The PNG wins
when both exist: a user's own annotation is more specific than the generator's. Runs in the engine's worker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MASK_SUFFIX = "_vessels"
GROUNDTRUTH_DIR = "groundtruth"


def find_vessel_mask(image: Path) -> Path | None:
    """The vessel mask beside ``image`` (``<stem>_vessels.png``, then ``groundtruth/<stem>.npz``), or None."""
    image = Path(image)
    for candidate in (
        image.with_name(f"{image.stem}{MASK_SUFFIX}.png"),
        image.parent / GROUNDTRUTH_DIR / f"{image.stem}.npz",
    ):
        if candidate.is_file():
            return candidate
    return None


def read_vessel_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool vessel mask of ``path``; one line naming the file when it cannot be read or its size is
    not the photograph's ``shape``."""
    from retinaview.core.common.errors import DataError, RetinaviewError

    path = Path(path)
    try:
        if path.suffix == ".npz":
            from retinaview.core.synthetic.writer import load_groundtruth

            mask = load_groundtruth(path, load_image=False).vessels
        else:
            from retinaview.core.common.io import load_image

            mask = load_image(path).max(axis=-1) >= 128
    except RetinaviewError:
        raise
    except Exception as exc:
        raise DataError(f"{path.name}: not a readable vessel mask ({type(exc).__name__})") from None
    if mask.shape != tuple(shape):
        raise DataError(
            f"{path.name}: vessel mask is {mask.shape[1]}x{mask.shape[0]} px, "
            f"the photograph {shape[1]}x{shape[0]}"
        )
    return np.asarray(mask, dtype=bool)
