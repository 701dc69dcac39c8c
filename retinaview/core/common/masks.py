"""n-sigma threshold masks (de la Torre, Valls and Puig, arXiv:1712.08107): keep the pixels whose score stands out from the field of view.

sigma is the standard deviation of the map over the fundus field of view, not over the black background,
which would shrink it. Modes: ``positive`` keeps S > n sigma, ``negative`` S < -n sigma, ``absolute``
|S| > n sigma.
"""

from __future__ import annotations

import numpy as np

MODES = ("positive", "negative", "absolute")


def fov_sigma(score: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Standard deviation of a (H, W) map over the FOV pixels (all pixels when ``fov`` is None or empty)."""
    values = score[fov] if fov is not None and fov.any() else score.ravel()
    return float(np.std(values, dtype=np.float64))


def nsigma_mask(
    score: np.ndarray, n: float, mode: str = "positive", fov: np.ndarray | None = None
) -> np.ndarray:
    """(H, W) bool mask of the pixels beyond ``n`` FOV standard deviations, inside the FOV."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    t = n * fov_sigma(score, fov)
    if mode == "positive":
        mask = score > t
    elif mode == "negative":
        mask = score < -t
    else:
        mask = np.abs(score) > t
    if fov is not None and fov.any():
        mask &= fov
    return mask
