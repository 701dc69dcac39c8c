"""Colour maps as uint8 lookup tables (numpy only, shared by the CLI's PNGs and the desktop app).

Signed maps use a diverging table centred on zero: green for the class, red against (as in the seeds), or a
colour-blind-safe blue/orange. Unsigned maps use a sequential table. Tables have 256 RGBA entries, alpha 255.
"""

from __future__ import annotations

import numpy as np

DIVERGING = ("green-red", "blue-orange")
SEQUENTIAL = ("inferno",)

# Anchor colours (negative end, centre, positive end) in RGB 0..255.
_ANCHORS = {
    "green-red": ((215, 48, 39), (20, 20, 20), (26, 200, 80)),
    # Colour-blind safe (blue for, orange against), after the Okabe-Ito palette.
    "blue-orange": ((230, 159, 0), (20, 20, 20), (86, 180, 233)),
}
_INFERNO = np.array(
    [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
     (250, 193, 39), (252, 255, 164)],
    dtype=np.float64,
)  # fmt: skip


def lut(name: str) -> np.ndarray:
    """(256, 4) uint8 RGBA table. Diverging tables: index 0 = most negative, 128 = zero, 255 = most positive."""
    t = np.linspace(0.0, 1.0, 256)
    if name in _ANCHORS:
        neg, mid, pos = (np.array(c, dtype=np.float64) for c in _ANCHORS[name])
        s = np.abs(2 * t - 1)[:, None] ** 0.8
        rgb = np.where((t < 0.5)[:, None], mid + (neg - mid) * s, mid + (pos - mid) * s)
    elif name == "inferno":
        x = t * (len(_INFERNO) - 1)
        i = np.minimum(x.astype(int), len(_INFERNO) - 2)
        f = (x - i)[:, None]
        rgb = _INFERNO[i] * (1 - f) + _INFERNO[i + 1] * f
    else:
        raise ValueError(
            f"unknown colour map {name!r} (known: {', '.join(DIVERGING + SEQUENTIAL)})"
        )
    out = np.empty((256, 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.rint(rgb), 0, 255)
    out[:, 3] = 255
    return out
