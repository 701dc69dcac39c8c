"""Turn float class maps into what the overlay draws, once per result, off the GUI thread.

Each (H, W) map becomes a uint8 index image: index 128 + round(127 * S / L) inside the field of view, 0
outside it, where L = min(max |S| over the FOV, ``SATURATE_SIGMA`` sigma). Moving the threshold slider then only
changes a 256-entry lookup table (index i stands for S = (i - 128) / 127 * L), so it allocates nothing and
never touches the float map again. sigma is the standard deviation over the FOV (the n-sigma masks of de la Torre, Valls and Puig, arXiv:1712.08107).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# One renderer: the index encoding, its constants and the quantisation are `retinaview.core.common.render`'s
# (the screen, the exports and ``retinaview explain`` draw a map alike).
from retinaview.core.common.render import (
    HALF_RANGE,
    OUTSIDE_INDEX,
    SATURATE_SIGMA,
    ZERO_INDEX,
    quantise,
)

__all__ = [
    "HALF_RANGE",
    "HIST_EDGES",
    "OUTSIDE_INDEX",
    "SATURATE_SIGMA",
    "ZERO_INDEX",
    "PreparedMaps",
    "prepare_explanation",
    "prepare_maps",
    "prepare_smoothed",
]
# The histogram is of S / sigma in 0.1-sigma bins, clipped to +-HIST_LIMIT.
HIST_LIMIT = 8.0
HIST_EDGES = np.linspace(-HIST_LIMIT, HIST_LIMIT, int(2 * HIST_LIMIT * 10) + 1)


@dataclass
class PreparedMaps:
    """Per-class index images and statistics of one map kind.

    ``index``: (C, H, W) uint8. ``sigma``: (C,) FOV standard deviation in score units. ``scale``: (C,) L,
    the score of index 255. ``hist``: (C, len(HIST_EDGES) - 1) pixel counts of S / sigma over the FOV.
    ``fov_fraction``: share of the image inside the FOV.
    """

    index: np.ndarray
    sigma: np.ndarray
    scale: np.ndarray
    hist: np.ndarray
    fov_fraction: float

    def nbytes(self) -> int:
        return self.index.nbytes + self.sigma.nbytes + self.scale.nbytes + self.hist.nbytes

    def cut_index(self, c: int, n_sigma: float) -> float:
        """The threshold n * sigma of class ``c`` in index units away from ZERO_INDEX."""
        scale = float(self.scale[c])
        if scale <= 0.0:
            return float("inf")
        return n_sigma * float(self.sigma[c]) / scale * HALF_RANGE


def prepare_maps(
    maps: np.ndarray, fov: np.ndarray | None, classes: Sequence[int] | None = None
) -> PreparedMaps:
    """(C, H, W) float maps and an (H, W) bool FOV -> `PreparedMaps`.

    ``classes``: the classes to prepare (default all); the others (not computed yet, NaN) are left empty:
    index 0 everywhere (drawn transparent), sigma and scale 0, no histogram counts.
    """
    maps = np.asarray(maps, dtype=np.float32)
    c, h, w = maps.shape
    if fov is None or fov.shape != (h, w) or not fov.any():
        fov = np.ones((h, w), dtype=bool)
    index = np.full((c, h, w), OUTSIDE_INDEX, dtype=np.uint8)
    sigma = np.zeros(c, dtype=np.float64)
    scale = np.zeros(c, dtype=np.float64)
    hist = np.zeros((c, len(HIST_EDGES) - 1), dtype=np.int64)
    for k in range(c) if classes is None else classes:
        drawn = quantise(maps[k], fov)
        index[k], sigma[k], scale[k] = drawn.index, drawn.sigma, drawn.scale
        s = drawn.sigma
        if s > 0:
            values = maps[k][fov]
            hist[k] = np.histogram(np.clip(values / s, -HIST_LIMIT, HIST_LIMIT), HIST_EDGES)[0]
    return PreparedMaps(index, sigma, scale, hist, float(fov.mean()))


def prepare_explanation(
    explanation, classes: Sequence[int] | None = None
) -> dict[str, PreparedMaps]:
    """Prepared maps of every kind the explanation declares (``explanation.kinds``).

    Parameters
    ----------
    explanation : retinaview.core.common.result.Explanation
        Any method's explanation.
    classes : sequence of int, optional
        The classes to prepare (default all; the others are left empty).

    Returns
    -------
    dict of str to PreparedMaps
        One entry per map kind, the method's own map first.
    """
    fov = explanation.fov
    return {kind: prepare_maps(explanation.kind(kind), fov, classes) for kind in explanation.kinds}


def prepare_smoothed(explanation) -> dict[str, PreparedMaps]:
    """Prepared maps of every kind, each class blurred by the smoothed display's Gaussian
    (`retinaview.core.common.render.smooth`, sigma `smooth_sigma_px` of the map's width). Computed in the
    engine's worker for a final result, so the GUI thread only looks them up.
    """
    from retinaview.core.common.render import smooth, smooth_norm, smooth_sigma_px

    fov = explanation.fov
    out = {}
    norm = None
    for kind in explanation.kinds:
        maps = np.asarray(explanation.kind(kind), dtype=np.float32)
        px = smooth_sigma_px(maps.shape[-1])
        if norm is None:
            norm = smooth_norm(fov, maps.shape[-2:], px)
        blurred = np.stack([smooth(m, fov, px, norm) for m in maps])
        out[kind] = prepare_maps(blurred, fov)
    return out
