"""Colour palettes for signed score maps, and a sequential table for unsigned ones (numpy only).

A signed map is drawn in two hues: one for scores that raise the class score ("for"), one for scores that
lower it ("against"), faint near zero and full at the saturation score. The hues are chosen to stay visible
on a fundus photograph, which is orange-red: red or orange "against" colours vanish into it. Both palettes
are blue-side for "against" (indigo); the default pairs it with cyan, and the pair stays apart from each
other and from the fundus under simulated deuteranopia, protanopia and tritanopia (Machado, Oliveira and
Fernandes 2009; checked in ``tests/test_render.py``). The green one keeps the green of the source papers' figures for "for".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """Colours for scores for the class (``pos``) and against it (``neg``): faint near 0, full at +-L."""

    name: str
    label: str
    pos: RGB
    neg: RGB
    pos_faint: RGB
    neg_faint: RGB
    pos_word: str
    neg_word: str


PALETTES: dict[str, Palette] = {
    "cyan_indigo": Palette(
        "cyan_indigo",
        "Cyan / indigo (colour-blind safe)",
        pos=(0, 230, 255),
        neg=(90, 40, 230),
        pos_faint=(170, 250, 255),
        neg_faint=(190, 170, 255),
        pos_word="cyan",
        neg_word="indigo",
    ),
    "green_indigo": Palette(
        "green_indigo",
        "Green / indigo",
        pos=(40, 230, 90),
        neg=(90, 40, 230),
        pos_faint=(170, 255, 170),
        neg_faint=(190, 170, 255),
        pos_word="green",
        neg_word="indigo",
    ),
}
DEFAULT_PALETTE = "cyan_indigo"
# Names used by earlier versions (settings files, scripts): red and orange were invisible on a fundus.
LEGACY_NAMES = {
    "green_red": "green_indigo",
    "green-red": "green_indigo",
    "blue_orange": "cyan_indigo",
    "blue-orange": "cyan_indigo",
}
SEQUENTIAL = ("inferno",)

_INFERNO = np.array(
    [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
     (250, 193, 39), (252, 255, 164)],
    dtype=np.float64,
)  # fmt: skip


def palette(name: str) -> Palette:
    """The palette called ``name`` (a name of `PALETTES` or an earlier name); ValueError otherwise."""
    found = PALETTES.get(LEGACY_NAMES.get(name, name))
    if found is None:
        raise ValueError(f"unknown colour map {name!r} (known: {', '.join(PALETTES)})")
    return found


def ramp(pal: Palette) -> np.ndarray:
    """(256, 3) float RGB: index 128 is a score of 0, 255 the full ``pos`` colour, 1 the full ``neg``."""
    offsets = np.arange(256, dtype=np.float64) - 128
    t = np.clip(np.abs(offsets) / 127, 0.0, 1.0)[:, None]
    pos = np.asarray(pal.pos_faint) * (1 - t) + np.asarray(pal.pos) * t
    neg = np.asarray(pal.neg_faint) * (1 - t) + np.asarray(pal.neg) * t
    return np.where((offsets > 0)[:, None], pos, neg)


def lut(name: str) -> np.ndarray:
    """(256, 4) uint8 RGBA table, alpha 255: a palette's ramp (index 128 = zero) or ``inferno``."""
    if name == "inferno":
        x = np.linspace(0.0, 1.0, 256) * (len(_INFERNO) - 1)
        i = np.minimum(x.astype(int), len(_INFERNO) - 2)
        f = (x - i)[:, None]
        rgb = _INFERNO[i] * (1 - f) + _INFERNO[i + 1] * f
    else:
        rgb = ramp(palette(name))
    out = np.empty((256, 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.rint(rgb), 0, 255)
    out[:, 3] = 255
    return out
