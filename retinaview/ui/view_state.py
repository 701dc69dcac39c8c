"""What the overlay shows, as one value the controls edit and the viewer draws."""

from __future__ import annotations

from dataclasses import dataclass

from retinaview.ui.colormaps import DEFAULT_COLORMAP

KIND_LABELS = {"total": "Total", "input": "Input-dependent", "constant": "Constant (total − input)"}
MODE_LABELS = {"positive": "For (+)", "negative": "Against (−)", "absolute": "Both (|S|)"}
THRESHOLD_MAX = 5.0
THRESHOLD_STEP = 0.1


@dataclass
class ViewState:
    """``cls``: class shown (None = the predicted class). ``threshold``: n in sigma units, 0..5.
    ``opacity``: 0..1 of the overlay layer."""

    cls: int | None = None
    grid: bool = False
    kind: str = "total"
    mode: str = "positive"
    threshold: float = 2.0
    opacity: float = 0.8
    colormap: str = DEFAULT_COLORMAP
    overlay: bool = True
    green: bool = False
