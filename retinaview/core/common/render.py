"""How a signed score map is drawn: the one home of quantisation, n-sigma cuts, lookup tables and sign modes.

The screen, every export and ``retinaview explain``'s PNG draw maps through these functions, so a pixel is
shown in one of them exactly when it is shown in the others.

A map becomes a uint8 index image: 128 + round(127 * S / L) inside the field of view (FOV), 0 outside it,
where L = min(max |S| over the FOV, ``SATURATE_SIGMA`` sigma) and sigma is the standard deviation of the map
over the FOV (not over the black background, which would shrink it). A 256-entry RGBA lookup table turns the
indices into colours; the n-sigma threshold only zeroes the alpha of the entries inside the cut, so moving a
slider rebuilds 256 entries and never touches the image. numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retinaview.core.common.colormaps import Palette, palette, ramp

ZERO_INDEX = 128
HALF_RANGE = 127
OUTSIDE_INDEX = 0
# Colours saturate at 6 sigma: thresholds go to 5 sigma, and a wider range would waste index resolution.
SATURATE_SIGMA = 6.0
# Which scores a map shows: those for the class, against it, or both. One set of names everywhere.
SIGN_MODES = ("positive", "negative", "absolute")
MODE_LABELS = {"positive": "For (+)", "negative": "Against (−)", "absolute": "Both (±)"}
MODE_WORDS = {
    "positive": "for the class",
    "negative": "against the class",
    "absolute": "for and against",
}
# The smoothed display: a Gaussian of this many pixels per 256 pixels of map width (2.5 px on a 640 px map),
# enough to merge single-pixel speckle into lesion-sized blobs without moving them.
SMOOTH_PX_PER_256 = 1.0


@dataclass(frozen=True)
class Quantised:
    """One map as drawn: ``index`` (H, W) uint8, ``sigma`` (FOV standard deviation, score units) and
    ``scale`` (L, the score of index 255)."""

    index: np.ndarray
    sigma: float
    scale: float

    def cut(self, n_sigma: float) -> float:
        """The threshold n * sigma in index units away from ZERO_INDEX."""
        return cut_index(self.sigma, self.scale, n_sigma)


def _fov(fov: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if fov is None or fov.shape != shape or not fov.any():
        return np.ones(shape, dtype=bool)
    return np.asarray(fov, dtype=bool)


def quantise(score: np.ndarray, fov: np.ndarray | None = None) -> Quantised:
    """(H, W) float map and (H, W) bool FOV (None: the whole map) -> its `Quantised` index image."""
    score = np.asarray(score, dtype=np.float32)
    inside = _fov(fov, score.shape)
    values = score[inside]
    sigma = float(np.std(values, dtype=np.float64))
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    scale = min(peak, SATURATE_SIGMA * sigma) if sigma > 0 else peak
    if scale > 0:
        q = score * np.float32(HALF_RANGE / scale)
        np.clip(q, -HALF_RANGE, HALF_RANGE, out=q)
        np.rint(q, out=q)
        q += ZERO_INDEX
        index = q.astype(np.uint8)
    else:
        index = np.full(score.shape, ZERO_INDEX, dtype=np.uint8)
    index[~inside] = OUTSIDE_INDEX
    return Quantised(index, sigma, scale)


def cut_index(sigma: float, scale: float, n_sigma: float) -> float:
    """The threshold n * sigma in index units away from ZERO_INDEX (inf for an all-zero map)."""
    if scale <= 0.0:
        return float("inf")
    return n_sigma * float(sigma) / float(scale) * HALF_RANGE


_OFFSETS = np.arange(256, dtype=np.float64) - ZERO_INDEX


def overlay_lut(pal: Palette | str, cut: float, mode: str) -> np.ndarray:
    """(256, 4) uint8 RGBA table for index images.

    ``cut``: threshold in index units from ZERO_INDEX (see `cut_index`). ``mode``: keep indices above the
    cut (positive), below minus the cut (negative) or both (absolute). Strong scores are opaque and weak ones
    see-through, so the photograph stays readable under the map.
    """
    pal = palette(pal) if isinstance(pal, str) else pal
    t = np.clip(np.abs(_OFFSETS) / HALF_RANGE, 0.0, 1.0)
    alpha = 255.0 * (0.55 + 0.45 * t)
    if mode == "positive":
        keep = _OFFSETS > cut
    elif mode == "negative":
        keep = _OFFSETS < -cut
    elif mode == "absolute":
        keep = np.abs(_OFFSETS) > cut
    else:
        raise ValueError(f"mode must be one of {', '.join(SIGN_MODES)}, not {mode!r}")
    keep[OUTSIDE_INDEX] = False
    keep[ZERO_INDEX] = False
    out = np.empty((256, 4), dtype=np.uint8)
    out[:, :3] = np.rint(ramp(pal)).astype(np.uint8)
    out[:, 3] = np.where(keep, np.rint(alpha), 0).astype(np.uint8)
    return out


def smooth_sigma_px(width: int) -> float:
    """The smoothed display's Gaussian sigma, in pixels, for a map ``width`` pixels wide."""
    return SMOOTH_PX_PER_256 * width / 256.0


def smooth_norm(fov: np.ndarray | None, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """The field of view blurred by the smoothing Gaussian: the normaliser of `smooth` (one per image,
    shared by its classes)."""
    from scipy.ndimage import gaussian_filter

    inside = _fov(fov, shape).astype(np.float32)
    return gaussian_filter(inside, sigma_px, mode="constant", truncate=3.0)


def smooth(
    score: np.ndarray,
    fov: np.ndarray | None = None,
    sigma_px: float | None = None,
    norm: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) float32: the map blurred by a Gaussian inside the FOV (normalised convolution, so the black
    border does not pull the edge of the fundus towards zero); 0 outside the FOV.

    ``sigma_px``: the Gaussian's sigma in pixels (default `smooth_sigma_px` of the width). ``norm``: the
    image's `smooth_norm` when already computed (the result is the same). NaN maps (classes not computed
    yet) stay NaN.
    """
    from scipy.ndimage import gaussian_filter

    score = np.asarray(score, dtype=np.float32)
    s = smooth_sigma_px(score.shape[-1]) if sigma_px is None else float(sigma_px)
    if s <= 0 or not np.isfinite(score).all():
        return score.copy()
    inside = _fov(fov, score.shape)
    if norm is None:
        norm = smooth_norm(inside, score.shape, s)
    num = gaussian_filter(np.where(inside, score, np.float32(0)), s, mode="constant", truncate=3.0)
    out = np.where(inside, num / np.maximum(norm, np.float32(1e-6)), np.float32(0))
    return out.astype(np.float32)


def render_overlay(
    score: np.ndarray,
    fov: np.ndarray | None = None,
    n: float = 2.0,
    mode: str = "positive",
    pal: Palette | str = "cyan_indigo",
    opacity: float = 1.0,
) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of a signed map as the viewer draws it (same index image, same table).

    Parameters
    ----------
    score
        (H, W) float map in score units (smooth it first with `smooth` for the smoothed display).
    fov
        (H, W) bool field of view; sigma and the mask use it. None: the whole map.
    n
        Threshold in FOV standard deviations.
    mode
        A name of `SIGN_MODES`.
    pal
        A `Palette` or its name.
    opacity
        0..1, multiplies the table's alpha (the viewer's opacity slider).
    """
    q = quantise(score, fov)
    table = overlay_lut(pal, q.cut(float(n)), mode)
    rgba = table[q.index]
    a = min(max(float(opacity), 0.0), 1.0)
    if a < 1.0:
        rgba[..., 3] = np.rint(rgba[..., 3].astype(np.float32) * a).astype(np.uint8)
    return rgba


def composite(photo: np.ndarray, rgba: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8: ``photo * (1 - a) + colour * a`` with a = weight * alpha / 255."""
    a = rgba[..., 3:4].astype(np.float32) * np.float32(weight / 255.0)
    out = photo.astype(np.float32)
    out += (rgba[..., :3].astype(np.float32) - out) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def overlay(
    photo: np.ndarray,
    score: np.ndarray,
    fov: np.ndarray | None = None,
    n: float = 2.0,
    mode: str = "positive",
    alpha: float = 0.8,
    cmap: Palette | str = "cyan_indigo",
) -> np.ndarray:
    """(H, W, 3) uint8: the photograph with the map's pixels beyond n sigma drawn over it (``photo`` and
    ``score`` of one size)."""
    return composite(
        np.asarray(photo, dtype=np.uint8)[..., :3], render_overlay(score, fov, n, mode, cmap, alpha)
    )


@dataclass(frozen=True)
class LegendInfo:
    """What the key describes: palette, sign mode, threshold (sigma), smoothed or raw (with the Gaussian's
    sigma in map pixels), the class (None in the grid) and its map's sigma in score units."""

    palette: Palette
    mode: str
    threshold: float
    smooth_px: float | None
    class_name: str | None = None
    sigma: float | None = None
    kind_label: str = "Total"


def legend_lines(info: LegendInfo) -> list[str]:
    """The key as plain lines (the export draws them; the screen shows them under the bar)."""
    p = info.palette
    target = f"class {info.class_name}" if info.class_name else "each map's class"
    lines = [
        f"{p.pos_word}: raises the score of {target}; {p.neg_word}: lowers it",
        f"shown: {MODE_WORDS[info.mode]}, beyond {info.threshold:.1f} σ · {info.kind_label.lower()} map · "
        + (
            f"smoothed (Gaussian {info.smooth_px:.1f} px)"
            if info.smooth_px is not None
            else "raw (per pixel)"
        ),
    ]
    if info.sigma is not None:
        lines.append(f"σ = {info.sigma:.3g} score per pixel, over the field of view")
    else:
        lines.append("σ: each map's own, over the field of view")
    return lines


def bar_colours(info: LegendInfo, samples: int = 241) -> tuple[np.ndarray, np.ndarray]:
    """(samples,) positions in sigma from -6 to +6 and (samples, 4) RGBA: the bar as the map is drawn,
    with alpha 0 where a score is hidden (inside the threshold, or of the sign not shown)."""
    s = np.linspace(-SATURATE_SIGMA, SATURATE_SIGMA, samples)
    t = np.clip(np.abs(s) / SATURATE_SIGMA, 0.0, 1.0)[:, None]
    p = info.palette
    pos = np.asarray(p.pos_faint) * (1 - t) + np.asarray(p.pos) * t
    neg = np.asarray(p.neg_faint) * (1 - t) + np.asarray(p.neg) * t
    rgb = np.where((s > 0)[:, None], pos, neg)
    n = info.threshold
    shown = {
        "positive": s > n,
        "negative": s < -n,
        "absolute": np.abs(s) > n,
    }[info.mode]
    rgba = np.concatenate([rgb, np.where(shown, 255.0, 0.0)[:, None]], axis=1)
    return s, rgba
