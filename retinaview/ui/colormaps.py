"""Overlay lookup tables: a diverging colour map centred on zero, with the n-sigma cut in its alpha channel.

The overlay image holds indices (see `retinaview.engine.prepare`): 0 outside the field of view, 128 for a
score of 0, 1 and 255 for -L and +L. A 256-entry RGBA table turns them into colours; the threshold only
zeroes the alpha of the entries inside the cut, so moving the slider rebuilds 256 entries, never the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retinaview.engine.prepare import HALF_RANGE, OUTSIDE_INDEX, ZERO_INDEX

MODES = ("positive", "negative", "absolute")


@dataclass(frozen=True)
class Diverging:
    """Colours for scores for the class (``pos``) and against it (``neg``), faint near 0, full at +-L."""

    name: str
    label: str
    pos: tuple[int, int, int]
    neg: tuple[int, int, int]
    pos_faint: tuple[int, int, int]
    neg_faint: tuple[int, int, int]


# Green for, red against, as in the seeds; blue/orange is the usual colour-blind-safe pair (it stays
# distinct under deuteranopia and protanopia, where green and red merge).
COLORMAPS = {
    "green_red": Diverging(
        "green_red", "Green / red", (40, 230, 90), (240, 50, 50), (170, 255, 170), (255, 170, 150)
    ),
    "blue_orange": Diverging(
        "blue_orange",
        "Blue / orange (colour-blind safe)",
        (30, 140, 255),
        (255, 140, 0),
        (160, 210, 255),
        (255, 210, 150),
    ),
}
DEFAULT_COLORMAP = "green_red"

_OFFSETS = np.arange(256, dtype=np.float64) - ZERO_INDEX


def overlay_lut(cmap: Diverging, cut: float, mode: str) -> np.ndarray:
    """(256, 4) uint8 RGBA table.

    ``cut``: threshold in index units from ZERO_INDEX (n sigma / L * 127). ``mode``: keep indices above the
    cut (positive), below minus the cut (negative) or both (absolute).
    """
    t = np.clip(np.abs(_OFFSETS) / HALF_RANGE, 0.0, 1.0)[:, None]
    pos = np.asarray(cmap.pos_faint) * (1 - t) + np.asarray(cmap.pos) * t
    neg = np.asarray(cmap.neg_faint) * (1 - t) + np.asarray(cmap.neg) * t
    rgb = np.where((_OFFSETS > 0)[:, None], pos, neg)
    # Strong scores opaque, weak ones see-through, so the photograph stays readable under the map.
    alpha = 255.0 * (0.55 + 0.45 * t[:, 0])
    if mode == "positive":
        keep = _OFFSETS > cut
    elif mode == "negative":
        keep = _OFFSETS < -cut
    elif mode == "absolute":
        keep = np.abs(_OFFSETS) > cut
    else:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    keep[OUTSIDE_INDEX] = False
    keep[ZERO_INDEX] = False
    lut = np.empty((256, 4), dtype=np.uint8)
    lut[:, :3] = np.rint(rgb).astype(np.uint8)
    lut[:, 3] = np.where(keep, np.rint(alpha), 0).astype(np.uint8)
    return lut


def colour_for(cmap: Diverging, sign: int) -> tuple[int, int, int]:
    """The full colour for scores of one sign (legends, histogram lines)."""
    return cmap.pos if sign >= 0 else cmap.neg
