"""The viewer's colour choices: the palettes and lookup tables of `retinaview.core.common.render`, by name.

Everything here comes from the torch-free core, so the screen, the exports and ``retinaview explain`` draw a
map with the same table.
"""

from __future__ import annotations

from retinaview.core.common.colormaps import (
    DEFAULT_PALETTE,
    LEGACY_NAMES,
    PALETTES,
    Palette,
)
from retinaview.core.common.render import MODE_LABELS, SIGN_MODES, overlay_lut

__all__ = ["COLORMAPS", "DEFAULT_COLORMAP", "MODES", "MODE_LABELS", "Diverging", "overlay_lut"]

MODES = SIGN_MODES
Diverging = Palette
DEFAULT_COLORMAP = DEFAULT_PALETTE


class _Palettes(dict):
    """The palettes by name; an earlier name (``green_red``) looks up its replacement, but is not listed."""

    def __missing__(self, key: str) -> Palette:
        if key in LEGACY_NAMES:
            return self[LEGACY_NAMES[key]]
        raise KeyError(key)


COLORMAPS: dict[str, Palette] = _Palettes(PALETTES)
