"""A class map drawn over its photograph as one RGB image, and numpy images as QImages: shared by the
report, the study window and the patient view, which show a fixed picture rather than the interactive
overlay of the main view."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

from retinaview.core.common.render import overlay


def fit_map(score: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32: ``score`` resized (bilinear) to ``shape`` when it covers the same field at another
    resolution (a map at model input size over the photograph)."""
    if score.shape == shape:
        return np.asarray(score, dtype=np.float32)
    img = Image.fromarray(np.asarray(score, dtype=np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def fit_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """A bool mask resized (nearest) to ``shape``, or None."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == shape:
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.NEAREST)) > 127


def map_over_photo(
    photo: np.ndarray,
    score: np.ndarray | None,
    fov: np.ndarray | None = None,
    n: float = 2.0,
    mode: str = "positive",
    cmap: str = "green-red",
) -> np.ndarray:
    """(H, W, 3) uint8: the photograph with the map's pixels beyond ``n`` sigma (over the field of view)
    coloured, as `retinaview.core.common.render.overlay` draws them; the photograph alone without a map."""
    photo = np.asarray(photo, dtype=np.uint8)
    if score is None:
        return photo
    shape = photo.shape[:2]
    return overlay(photo, fit_map(score, shape), fit_mask(fov, shape), n=n, mode=mode, cmap=cmap)


def qimage(rgb: np.ndarray) -> QImage:
    """A QImage holding its own copy of an (H, W, 3) uint8 array."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
