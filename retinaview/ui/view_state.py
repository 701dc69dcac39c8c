"""What the overlay shows, as one value the controls edit and the viewer draws."""

from __future__ import annotations

from dataclasses import dataclass

from retinaview.ui.colormaps import DEFAULT_COLORMAP

KIND_LABELS = {"total": "Total", "input": "Input-dependent", "constant": "Constant (total − input)"}


def kind_label(kind: str) -> str:
    """A map kind's name on screen: rfscore's three by name, any other method's own kind as it is called
    (``map``: the method's map)."""
    if kind == "map":
        return "Method's map"
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


THRESHOLD_MAX = 5.0
THRESHOLD_STEP = 0.1
DEFAULT_THRESHOLD = 2.0
DEFAULT_OPACITY = 0.8


@dataclass
class ViewState:
    """``cls``: class shown (None = the predicted class). ``threshold``: n in sigma units, 0..5.
    ``opacity``: 0..1 of the overlay layer. ``smooth``: draw the map blurred by a small Gaussian (the
    clinician's default) instead of the raw per-pixel map."""

    cls: int | None = None
    grid: bool = False
    kind: str = "total"
    mode: str = "positive"
    threshold: float = DEFAULT_THRESHOLD
    opacity: float = DEFAULT_OPACITY
    colormap: str = DEFAULT_COLORMAP
    overlay: bool = True
    green: bool = False
    smooth: bool = True
