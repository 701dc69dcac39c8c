"""Where the model's input pixels lie on the photograph, as an affine map per axis.

The overlay draws the class map at model resolution and lets Qt place it on the full-resolution photograph
with a transform, so that the threshold slider costs the same for a 640 px and a 4000 px photograph.
"""

from __future__ import annotations

import numpy as np

Affine = tuple[float, float, float, float]
IDENTITY: Affine = (1.0, 0.0, 1.0, 0.0)


def affine_from_geometry(geometry, model_hw: tuple[int, int]) -> Affine | None:
    """(a_y, b_y, a_x, b_x) with photo_index = a * model_index + b, or None when it cannot be found.

    Uses ``geometry.affine`` when the preprocessing geometry provides it; otherwise probes
    ``geometry.to_photo`` with coordinate ramps and fits a line per axis over the pixels the model saw.
    """
    if geometry is None:
        return None
    given = getattr(geometry, "affine", None)
    if given is not None:
        a_y, b_y, a_x, b_x = (float(v) for v in given)
        return a_y, b_y, a_x, b_x
    to_photo = getattr(geometry, "to_photo", None)
    if to_photo is None:
        return None
    h, w = model_hw
    try:
        ones = np.asarray(to_photo(np.ones((h, w), np.float32)), dtype=np.float64)
        ys = np.asarray(
            to_photo(np.repeat(np.arange(h, dtype=np.float32)[:, None] + 1.0, w, 1)), np.float64
        )
        xs = np.asarray(
            to_photo(np.repeat(np.arange(w, dtype=np.float32)[None, :] + 1.0, h, 0)), np.float64
        )
    except Exception:
        return None
    # to_photo may spread mass (values scale with area) and leaves the padding at 0: divide by the ones map
    # and fit only where the model saw the photograph. Ramps start at 1 so no seen pixel is 0.
    seen = ones > 0.5 * np.max(ones) if ones.size else None
    if seen is None or seen.sum() < 16:
        return None
    rows, cols = np.nonzero(seen)
    my = ys[rows, cols] / ones[rows, cols] - 1.0
    mx = xs[rows, cols] / ones[rows, cols] - 1.0
    fit_y = _line(my, rows.astype(np.float64))
    fit_x = _line(mx, cols.astype(np.float64))
    if fit_y is None or fit_x is None:
        return None
    return fit_y[0], fit_y[1], fit_x[0], fit_x[1]


def _line(model_index: np.ndarray, photo_index: np.ndarray) -> tuple[float, float] | None:
    """Least-squares photo = a * model + b; None when the points do not lie on a line."""
    if np.ptp(model_index) < 1:
        return None
    a, b = np.polyfit(model_index, photo_index, 1)
    if a <= 0 or not np.isfinite([a, b]).all():
        return None
    spread = np.abs(a * model_index + b - photo_index)
    if np.median(spread) > max(2.0, 2.0 * a):
        return None
    return float(a), float(b)
