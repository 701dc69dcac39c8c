"""Preprocessing chains: a fundus photograph -> the model's square input, and the geometry to map back.

Chains:

- ``paper``: find the field-of-view (FOV) disc, crop the black border around it (a square of side = FOV
  diameter centred on the disc; parts outside the photo are black padding), resize so the diameter is `size`.
- ``graham`` (Graham 2015, the Kaggle DR competition's preprocessing): ``paper``, then 4*I - 4*Gauss(I, sigma=size/30) + 128
  in 0..255 space, clipped; the outer 10% of the radius is set to half-gray.
- ``vessels`` (Maninis et al. 2016 and the Grad-CAM study of DRIU): ``paper``, then green channel, Gaussian filter, FOV mask, normalise and invert,
  illumination equalisation I + M - mean_w(I) (w about size/20), replicated to 3 channels.
- ``none``: resize the whole image to size x size (for non-fundus inputs); the FOV is the whole image.

numpy + scikit-image (+ scipy.ndimage, which scikit-image requires) + Pillow for the fast resize; no torch:
everything returns numpy arrays and callers convert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from retinaview.core.common.geometry import Geometry
from retinaview.core.common.io import coerce_image

__all__ = [
    "CHAINS",
    "FovInfo",
    "Geometry",
    "Preprocessed",
    "find_fov",
    "preprocess",
]

CHAINS = ("paper", "graham", "vessels", "none")

# Graham: blur sigma as a fraction of the model input side, and the part of the radius kept.
GRAHAM_SIGMA_FRACTION = 1.0 / 30.0
GRAHAM_KEEP_RADIUS = 0.9
# Vessels (the DRIU preprocessing chain): noise filter sigma (px), expected mean M, equalisation window as a fraction of size.
VESSEL_NOISE_SIGMA = 1.0
VESSEL_MEAN_LEVEL = 128.0 / 255.0
VESSEL_WINDOW_FRACTION = 1.0 / 20.0

# FOV detection works on a copy reduced to at most this many pixels on its long side.
_FOV_WORK_SIDE = 512


# --------------------------------------------------------------------------------------------------
# Field of view
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FovInfo:
    """The fundus field of view: `mask` (H, W) bool of the photographed retina, the fitted circle
    (`center` = (cy, cx) in pixel coordinates, `radius` in pixels), and whether a FOV was `found`
    (False: fall-back to the whole image)."""

    mask: np.ndarray
    center: tuple[float, float]
    radius: float
    found: bool = True


@dataclass(frozen=True)
class _Circle:
    cy: float
    cx: float
    r: float
    found: bool
    mask_small: np.ndarray  # FOV mask at the reduced resolution
    factor: int  # reduction factor


def _reduce(img: Image.Image, factor: int) -> np.ndarray:
    return np.asarray(img.reduce(factor) if factor > 1 else img)


def _fit_circle(ys: np.ndarray, xs: np.ndarray) -> tuple[float, float, float] | None:
    """Algebraic (Kasa) least-squares circle through points, with two rounds of outlier trimming."""
    keep = np.ones(ys.shape, dtype=bool)
    result = None
    for _ in range(3):
        y, x = ys[keep], xs[keep]
        if y.size < 12:
            return result
        A = np.column_stack([x, y, np.ones_like(x)])
        b = -(x * x + y * y)
        try:
            (D, E, F), *_ = np.linalg.lstsq(A, b, rcond=None)
        except np.linalg.LinAlgError:
            return result
        cx, cy = -D / 2.0, -E / 2.0
        r2 = cx * cx + cy * cy - F
        if not np.isfinite(r2) or r2 <= 0:
            return result
        r = math.sqrt(r2)
        result = (float(cy), float(cx), float(r))
        resid = np.abs(np.hypot(ys - cy, xs - cx) - r)
        mad = float(np.median(resid[keep]))
        new_keep = resid <= max(1.5, 3.0 * mad)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return result


def _detect(img: Image.Image) -> _Circle:
    """Find the FOV on a reduced copy of the RGB image (a PIL image)."""
    W, H = img.size
    factor = max(1, math.ceil(max(H, W) / _FOV_WORK_SIDE))
    small = _reduce(img, factor)
    h, w = small.shape[:2]
    whole = _Circle(
        cy=(H - 1) / 2.0,
        cx=(W - 1) / 2.0,
        r=max(H, W) / 2.0,
        found=False,
        mask_small=np.ones((h, w), dtype=bool),
        factor=factor,
    )
    if h < 8 or w < 8:
        return whole
    v = small[..., 0].astype(np.float32) + small[..., 1].astype(np.float32)
    v = ndi.gaussian_filter(v * 0.5, 1.0, mode="nearest")
    lo, hi = (float(q) for q in np.percentile(v, [1.0, 99.0]))
    contrast = hi - lo
    if hi < 12.0 or contrast < 8.0:
        return whole  # blank, all black or flat: no FOV to find
    t = lo + max(0.1 * contrast, 6.0)
    try:
        t = min(t, float(threshold_otsu(v)))
    except ValueError:
        pass
    mask = v > t
    mask = ndi.binary_opening(mask, structure=np.ones((3, 3), bool))
    labels, n = ndi.label(mask)
    if n == 0:
        return whole
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    mask = labels == int(np.argmax(counts))
    mask = ndi.binary_fill_holes(mask)
    area = int(mask.sum())
    if area < 0.02 * h * w:
        return whole

    edge = mask & ~ndi.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=1)
    edge[:2, :] = False
    edge[-2:, :] = False
    edge[:, :2] = False
    edge[:, -2:] = False
    ys, xs = np.nonzero(edge)
    fit = _fit_circle(ys.astype(np.float64), xs.astype(np.float64)) if ys.size else None

    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    bb_cy = (rows[0] + rows[-1]) / 2.0
    bb_cx = (cols[0] + cols[-1]) / 2.0
    bb_r = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) / 2.0
    diag = math.hypot(h, w)
    if fit is not None:
        cy, cx, r = fit
        # Sanity: a FOV circle is at least about as large as the mask's extent, and of the image's scale.
        plausible = (
            0.75 * bb_r <= r <= 1.5 * diag
            and math.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2) <= diag
        )
        if not plausible:
            fit = None
    if fit is None:
        cy, cx, r = bb_cy, bb_cx, bb_r
    f = float(factor)
    return _Circle(
        cy=cy * f + (f - 1) / 2.0,
        cx=cx * f + (f - 1) / 2.0,
        r=r * f,
        found=True,
        mask_small=mask,
        factor=factor,
    )


def find_fov(image_uint8) -> FovInfo:
    """Detect the fundus field of view of an RGB photograph (anything `coerce_image` accepts).

    Threshold a smoothed red+green intensity (a fraction of the robust range above the black level,
    capped by Otsu), keep the largest connected component, fill holes, and fit a circle to its boundary
    away from the image edges (so a FOV cut at the top and bottom still gets its true diameter). Never
    fails: without a FOV (all black, flat, not a fundus photo) the whole image is returned, found=False.
    """
    rgb = coerce_image(image_uint8)
    circ = _detect(Image.fromarray(rgb))
    return _fov_info(circ, rgb.shape[:2])


def _fov_info(circ: _Circle, shape: tuple[int, int]) -> FovInfo:
    H, W = shape
    f = circ.factor
    m = circ.mask_small
    if f > 1:
        m = np.repeat(np.repeat(m, f, axis=0), f, axis=1)
    m = np.ascontiguousarray(m[:H, :W])
    return FovInfo(
        mask=m, center=(float(circ.cy), float(circ.cx)), radius=float(circ.r), found=circ.found
    )


# --------------------------------------------------------------------------------------------------
# Chains
# --------------------------------------------------------------------------------------------------


@dataclass
class Preprocessed:
    """The model's input for one photograph, with what is needed to map results back onto it."""

    image: np.ndarray  # (size, size, 3) float32 in [0, 1], RGB, C-contiguous (before normalisation)
    fov: np.ndarray  # (size, size) bool field of view
    geometry: Geometry
    chain: str
    display: (
        np.ndarray
    )  # (size, size, 3) uint8 of what the model sees (for `paper`: the cropped photo)


def _disc_in_model(geom: Geometry, cy: float, cx: float, r: float) -> np.ndarray:
    """(size, size) bool: model pixels whose centre lies inside the photo disc (cy, cx, r)."""
    ys, xs = geom.model_to_photo_coords(np.arange(geom.size), np.arange(geom.size))
    d2 = (ys[:, None] - cy) ** 2 + (xs[None, :] - cx) ** 2
    return d2 <= r * r


def _square_crop(pil: Image.Image, circ: _Circle, size: int) -> tuple[np.ndarray, Geometry]:
    W, H = pil.size
    side = max(1, int(round(2.0 * circ.r)))
    top = int(round(circ.cy - side / 2.0 + 0.5))
    left = int(round(circ.cx - side / 2.0 + 0.5))
    geom = Geometry(photo_shape=(H, W), crop=(top, left, side, side), size=size)
    # Image.crop pads with black where the box leaves the photo.
    cropped = pil.crop((left, top, left + side, top + side))
    if side != size:
        cropped = cropped.resize((size, size), Image.Resampling.LANCZOS)
    return np.array(cropped, dtype=np.uint8), geom


def _graham(display: np.ndarray, fov: np.ndarray, size: int) -> np.ndarray:
    """4*I - 4*Gauss(I, size/30) + 128 in 0..255, clipped; outside `fov` half-gray. Returns float32."""
    img = display.astype(np.float32)
    sigma = size * GRAHAM_SIGMA_FRACTION
    blur = _wide_gaussian(img, sigma)
    out = 4.0 * img - 4.0 * blur + 128.0
    np.clip(out, 0.0, 255.0, out=out)
    out[~fov] = 128.0
    return out


def _wide_gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W, C) float32 image with a wide sigma: filtered on a copy reduced by an
    integer factor (about sigma/4 px per sample, far below the blur's cut-off), then interpolated back."""
    H, W = img.shape[:2]
    k = max(1, int(sigma // 4))
    if k == 1:
        return ndi.gaussian_filter(img, (sigma, sigma, 0), mode="constant")
    pad = 2 * k  # zero margin (mode "constant"), so interpolation never extrapolates at the edges
    h, w = -(-(H + 2 * pad) // k), -(-(W + 2 * pad) // k)
    padded = np.zeros((h * k, w * k, img.shape[2]), dtype=np.float32)
    padded[pad : pad + H, pad : pad + W] = img
    small = padded.reshape(h, k, w, k, -1).mean(axis=(1, 3))
    # The box average adds variance (k^2 - 1) / 12 in input px; take it out of the Gaussian.
    s2 = max(sigma * sigma - (k * k - 1) / 12.0, 0.25) ** 0.5 / k
    small = ndi.gaussian_filter(small, (s2, s2, 0), mode="constant")
    # Back to full resolution: input pixel i sits at (i + pad + 0.5) / k - 0.5 in reduced units.
    coords_y = (np.arange(H) + pad + 0.5) / k - 0.5
    coords_x = (np.arange(W) + pad + 0.5) / k - 0.5
    out = np.empty_like(img)
    iy = np.floor(coords_y).astype(int)
    ix = np.floor(coords_x).astype(int)
    fy = (coords_y - iy).astype(np.float32)[:, None, None]
    fx = (coords_x - ix).astype(np.float32)[None, :, None]
    rows = small[iy] * (1 - fy) + small[iy + 1] * fy  # (H, w, C)
    out[:] = rows[:, ix] * (1 - fx) + rows[:, ix + 1] * fx
    return out


def _vessels(display: np.ndarray, fov: np.ndarray, size: int) -> np.ndarray:
    """The DRIU chain: green channel, Gaussian filter, FOV mask, normalise + invert, illumination
    equalisation I + M - mean_w(I) (mean over the FOV part of the window). Returns (size, size) float32."""
    g = display[..., 1].astype(np.float32) / 255.0
    g = ndi.gaussian_filter(g, VESSEL_NOISE_SIGMA, mode="nearest")
    if not fov.any():
        return np.zeros_like(g)
    vals = g[fov]
    lo, hi = float(vals.min()), float(vals.max())
    n = (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)
    inv = 1.0 - n
    fm = fov.astype(np.float32)
    inv *= fm
    win = max(3, int(round(size * VESSEL_WINDOW_FRACTION)) | 1)
    num = ndi.uniform_filter(inv, win, mode="constant")
    den = ndi.uniform_filter(fm, win, mode="constant")
    local_mean = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-6)
    eq = inv + VESSEL_MEAN_LEVEL - local_mean
    np.clip(eq, 0.0, 1.0, out=eq)
    eq *= fm
    return eq


def preprocess(image, chain: str = "paper", size: int = 640) -> Preprocessed:
    """Turn a photograph (anything `coerce_image` accepts) into the model's input for `chain`."""
    if chain not in CHAINS:
        raise ValueError(
            f"unknown preprocessing chain {chain!r}; expected one of {', '.join(CHAINS)}"
        )
    size = int(size)
    if size < 8:
        raise ValueError(f"model input size must be at least 8 pixels, got {size}")
    rgb = coerce_image(image)
    H, W = rgb.shape[:2]
    pil = Image.fromarray(rgb)

    if chain == "none":
        geom = Geometry(photo_shape=(H, W), crop=(0, 0, H, W), size=size)
        if (H, W) != (size, size):
            pil = pil.resize((size, size), Image.Resampling.LANCZOS)
        display = np.array(pil, dtype=np.uint8)
        fov = np.ones((size, size), dtype=bool)
        image_f = display.astype(np.float32) / np.float32(255.0)
        return Preprocessed(image_f, fov, geom, chain, display)

    circ = _detect(pil)
    display, geom = _square_crop(pil, circ, size)
    on_photo = geom.photo_region_in_model()
    if circ.found:
        fov = _disc_in_model(geom, circ.cy, circ.cx, circ.r) & on_photo
    else:
        fov = on_photo

    if chain == "paper":
        image_f = display.astype(np.float32) / np.float32(255.0)
    elif chain == "graham":
        if circ.found:
            fov = _disc_in_model(geom, circ.cy, circ.cx, GRAHAM_KEEP_RADIUS * circ.r) & on_photo
        out = _graham(display, fov, size)
        display = np.rint(out).astype(np.uint8)
        image_f = out / np.float32(255.0)
    else:  # vessels
        eq = _vessels(display, fov, size)
        image_f = np.repeat(eq[:, :, None], 3, axis=2)
        display = np.rint(image_f * 255.0).astype(np.uint8)
    image_f = np.ascontiguousarray(image_f, dtype=np.float32)
    return Preprocessed(image_f, fov, geom, chain, np.ascontiguousarray(display))
