"""A class map drawn over its photograph as one RGB image, and numpy images as QImages: shared by the
report, the study window and the patient view, which show a fixed picture rather than the interactive
overlay of the main view."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

from retinaview.core.common.render import overlay

Affine = tuple[float, float, float, float]


def _axis_weights(n_out: int, a: float, b: float, n_in: int) -> tuple[np.ndarray, ...]:
    """Bilinear sample positions along one axis: for output index i the model index (i - b) / a, as the
    two neighbours, their weights, and whether the position lies on the map at all."""
    src = (np.arange(n_out, dtype=np.float64) - b) / a
    inside = (src >= -0.5) & (src <= n_in - 0.5)
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    return lo, hi, w, inside


def place_map(
    score: np.ndarray, to_photo: Affine, shape: tuple[int, int], fill: float = 0.0
) -> np.ndarray:
    """(H, W) float32: a model-resolution map placed on the photograph's pixel grid by the engine's affine
    ``to_photo`` = (a_y, b_y, a_x, b_x), photo index = a * model index + b (bilinear; ``fill`` where the
    map does not reach, e.g. a photograph cropped by the preprocessing)."""
    score = np.asarray(score, dtype=np.float32)
    a_y, b_y, a_x, b_x = to_photo
    y0, y1, wy, iny = _axis_weights(shape[0], a_y, b_y, score.shape[0])
    x0, x1, wx, inx = _axis_weights(shape[1], a_x, b_x, score.shape[1])
    rows = score[y0] * (1 - wy)[:, None] + score[y1] * wy[:, None]
    out = rows[:, x0] * (1 - wx)[None, :] + rows[:, x1] * wx[None, :]
    out[~(iny[:, None] & inx[None, :])] = fill
    return out.astype(np.float32, copy=False)


def place_mask(mask: np.ndarray, to_photo: Affine, shape: tuple[int, int]) -> np.ndarray:
    """A model-resolution bool mask on the photograph's grid (nearest; False where it does not reach)."""
    return place_map(np.asarray(mask, dtype=np.float32), to_photo, shape) >= 0.5


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
    to_photo: Affine | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8: the photograph with the map's pixels beyond ``n`` sigma (over the field of view)
    coloured, as `retinaview.core.common.render.overlay` draws them; the photograph alone without a map.

    ``to_photo``: the engine's affine from model input pixels to photograph pixels (`place_map`); without
    it the map is taken to cover the whole photograph and is resized to it."""
    photo = np.asarray(photo, dtype=np.uint8)
    if score is None:
        return photo
    shape = photo.shape[:2]
    if to_photo is not None:
        placed = place_map(score, to_photo, shape)
        # sigma over the field of view as placed on the photograph's pixels.
        mask = np.ones(np.shape(score), bool) if fov is None else np.asarray(fov, dtype=bool)
        sigma_fov = place_mask(mask, to_photo, shape)
        return overlay(photo, placed, sigma_fov, n=n, mode=mode, cmap=cmap)
    return overlay(photo, fit_map(score, shape), fit_mask(fov, shape), n=n, mode=mode, cmap=cmap)


def qimage(rgb: np.ndarray) -> QImage:
    """A QImage holding its own copy of an (H, W, 3) uint8 array."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
