"""Where the model's input pixels lie on the photograph: the preprocessing `Geometry` (maps between the
original photograph and the model's square input) and its affine form per axis, which the overlay uses to let
Qt place a model-resolution map on a full-resolution photograph (the threshold slider then costs the same for
a 640 px and a 4000 px photograph). numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class Geometry:
    """Maps between the original photograph and the model's square input.

    Pixel centres are the sample points: model pixel u (row) sits at photo row
    ``top - 0.5 + (u + 0.5) * height / size``, and likewise for columns.
    """

    photo_shape: tuple[int, int]  # (H, W) of the original photograph
    crop: tuple[int, int, int, int]  # (top, left, height, width) in the photo; may extend outside
    size: int  # model input side

    @property
    def scale(self) -> tuple[float, float]:
        """Model pixels per photo pixel, (rows, columns)."""
        _, _, h, w = self.crop
        return self.size / h, self.size / w

    @property
    def affine(self) -> tuple[float, float, float, float]:
        """(a_y, b_y, a_x, b_x) with photo_index = a * model_index + b on each axis."""
        top, left, _, _ = self.crop
        sy, sx = self.scale
        return 1.0 / sy, top - 0.5 + 0.5 / sy, 1.0 / sx, left - 0.5 + 0.5 / sx

    def model_to_photo_coords(self, u, v):
        """Model (row, col) coordinates -> photo (row, col) coordinates (floats, arrays allowed)."""
        top, left, h, w = self.crop
        sy, sx = self.scale
        return (np.asarray(u, dtype=np.float64) + 0.5) / sy + top - 0.5, (
            np.asarray(v, dtype=np.float64) + 0.5
        ) / sx + left - 0.5

    def photo_to_model_coords(self, y, x):
        """Photo (row, col) coordinates -> model (row, col) coordinates (floats, arrays allowed)."""
        top, left, h, w = self.crop
        sy, sx = self.scale
        return (np.asarray(y, dtype=np.float64) - top + 0.5) * sy - 0.5, (
            np.asarray(x, dtype=np.float64) - left + 0.5
        ) * sx - 0.5

    def photo_region_in_model(self) -> np.ndarray:
        """(size, size) bool: model pixels whose centre lies on the photograph (not on padding)."""
        H, W = self.photo_shape
        ys, xs = self.model_to_photo_coords(np.arange(self.size), np.arange(self.size))
        rows = (ys >= -0.5) & (ys < H - 0.5)
        cols = (xs >= -0.5) & (xs < W - 0.5)
        return rows[:, None] & cols[None, :]

    def to_photo(
        self,
        array2d: np.ndarray,
        order: int = 1,
        fill: float = 0.0,
        anti_aliasing: bool | None = None,
    ) -> np.ndarray:
        """A model-space (size, size[, C]) map -> photo-space (H, W[, C]) map.

        Resampled with a spline of `order` (0 nearest, 1 bilinear, 3 cubic); photo pixels outside the
        crop box get `fill`. Bool maps stay bool (interpolated and thresholded at 0.5 when order > 0).
        `anti_aliasing` (default: when order > 0 and the map shrinks) smooths before sampling.
        """
        a = np.asarray(array2d)
        if a.shape[:2] != (self.size, self.size):
            raise ValueError(
                f"to_photo expects a ({self.size}, {self.size}) map, got shape {a.shape}"
            )
        H, W = self.photo_shape
        top, left, h, w = self.crop
        sy, sx = self.scale
        y0, y1 = max(0, top), min(H, top + h)
        x0, x1 = max(0, left), min(W, left + w)
        offset = ((y0 - top + 0.5) * sy - 0.5, (x0 - left + 0.5) * sx - 0.5)
        return _resample(
            a,
            out_shape=(H, W),
            region=(y0, y1, x0, x1),
            step=(sy, sx),
            offset=offset,
            order=order,
            fill=fill,
            anti_aliasing=anti_aliasing,
            valid=None,
        )

    def to_model(
        self,
        array2d: np.ndarray,
        order: int = 1,
        fill: float = 0.0,
        anti_aliasing: bool | None = None,
    ) -> np.ndarray:
        """A photo-space (H, W[, C]) map -> model-space (size, size[, C]) map (the inverse of to_photo).

        Model pixels that fall on padding (outside the photograph) get `fill`.
        """
        a = np.asarray(array2d)
        if a.shape[:2] != tuple(self.photo_shape):
            raise ValueError(
                f"to_model expects a {tuple(self.photo_shape)} map, got shape {a.shape}"
            )
        top, left, h, w = self.crop
        sy, sx = self.scale
        offset = (0.5 / sy + top - 0.5, 0.5 / sx + left - 0.5)
        return _resample(
            a,
            out_shape=(self.size, self.size),
            region=(0, self.size, 0, self.size),
            step=(1.0 / sy, 1.0 / sx),
            offset=offset,
            order=order,
            fill=fill,
            anti_aliasing=anti_aliasing,
            valid=self.photo_region_in_model(),
        )


def _resample(
    a: np.ndarray,
    out_shape: tuple[int, int],
    region: tuple[int, int, int, int],
    step: tuple[float, float],
    offset: tuple[float, float],
    order: int,
    fill: float,
    anti_aliasing: bool | None,
    valid: np.ndarray | None,
) -> np.ndarray:
    """Axis-aligned resampling: output pixel (r, c) of `region` reads input coordinate
    (offset[0] + (r - region_top) * step[0], offset[1] + (c - region_left) * step[1])."""
    if order not in (0, 1, 2, 3, 4, 5):
        raise ValueError(f"order must be 0..5, got {order}")
    is_bool = a.dtype == np.bool_
    if is_bool:
        work = a.astype(np.float32)
        out_dtype = np.dtype(np.bool_)
    elif a.dtype.kind == "f":
        work = a
        out_dtype = a.dtype
    elif order == 0:
        work = a
        out_dtype = a.dtype
    else:
        work = a.astype(np.float32)
        out_dtype = np.dtype(np.float32)
    extra = a.shape[2:]
    out = np.empty(out_shape + extra, dtype=out_dtype)
    out[...] = bool(fill) if is_bool else fill
    y0, y1, x0, x1 = region
    if y1 <= y0 or x1 <= x0:
        return out

    if anti_aliasing is None:
        anti_aliasing = order > 0 and (step[0] > 1.0 or step[1] > 1.0)
    sigma = (max(0.0, (step[0] - 1.0) / 2.0), max(0.0, (step[1] - 1.0) / 2.0))
    smooth = anti_aliasing and (sigma[0] > 0 or sigma[1] > 0)

    flat = work.reshape(work.shape[:2] + (-1,))
    sub_shape = (y1 - y0, x1 - x0)
    res = np.empty(sub_shape + (flat.shape[2],), dtype=np.float64 if order else work.dtype)
    for k in range(flat.shape[2]):
        plane = flat[:, :, k]
        if smooth:
            plane = ndi.gaussian_filter(plane.astype(np.float64), sigma, mode="nearest")
        res[:, :, k] = ndi.affine_transform(
            plane,
            matrix=np.asarray(step, dtype=np.float64),
            offset=offset,
            output_shape=sub_shape,
            order=order,
            mode="nearest",
            prefilter=order > 1,
        )
    res = res.reshape(sub_shape + extra)
    if is_bool:
        res = res > 0.5 if order > 0 else res.astype(bool)
    out[y0:y1, x0:x1] = res
    if valid is not None:
        out[~valid] = bool(fill) if is_bool else fill
    return out


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
