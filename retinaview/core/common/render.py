"""Render a signed score map over a photograph with an n-sigma threshold (for PNG exports and the CLI)."""

from __future__ import annotations

import numpy as np

from retinaview.core.common.colormaps import lut
from retinaview.core.common.masks import fov_sigma, nsigma_mask


def overlay(
    photo: np.ndarray,
    score: np.ndarray,
    fov: np.ndarray | None = None,
    n: float = 2.0,
    mode: str = "absolute",
    alpha: float = 0.75,
    cmap: str = "green-red",
) -> np.ndarray:
    """(H, W, 3) uint8: the photograph with the pixels beyond n sigma coloured by their score.

    Colour saturates at 4 sigma; pixels inside the threshold show the photograph unchanged.
    """
    sigma = fov_sigma(score, fov) or 1.0
    mask = nsigma_mask(score, n, mode, fov)
    idx = np.clip(np.rint(128 + 127 * score / (4 * sigma)), 0, 255).astype(np.uint8)
    colour = lut(cmap)[idx, :3].astype(np.float32)
    out = photo.astype(np.float32)
    a = alpha * mask[..., None]
    out = out * (1 - a) + colour * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
