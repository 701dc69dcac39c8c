"""How each logit is built: input-dependent part + S_k of every layer + bias = logit (a waterfall chart).

The selected class is drawn as floating bars (each part starts where the running sum stands); every class's
running sum is drawn as a thin line in its grade colour, so all five logits are built in one picture. The
sum written out and the key sit above and below the plot, never over the lines.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from retinaview.engine.layers import Waterfall
from retinaview.ui.colormaps import COLORMAPS
from retinaview.ui.theme import ACCENT, GRADE_COLOURS, MUTED, PANEL, TEXT

# x-axis room beyond the input bar and the logit bar, in bars
MARGIN = 1.0


def _rgb(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


class WaterfallPlot(QWidget):
    """The selected class's parts as floating bars, every class's running sum as a line, with a key."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.caption = QLabel()
        self.caption.setObjectName("muted")
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.key = QLabel()
        self.key.setWordWrap(True)
        self.key.setTextFormat(Qt.TextFormat.RichText)
        for label in (self.caption, self.key):
            label.setContentsMargins(6, 2, 6, 2)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.plot = pg.PlotWidget(background=PANEL)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        item = self.plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(MUTED))
            axis.setTextPen(pg.mkPen(TEXT))
            axis.enableAutoSIPrefix(False)
        item.setLabel("left", "logit units", color=MUTED)
        item.setLabel("bottom", "input · layer Sₖ · bias → logit", color=MUTED)
        item.showGrid(y=True, alpha=0.15)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.plot.addItem(self.bars)
        self.zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(MUTED, width=1))
        self.plot.addItem(self.zero)
        self.lines: list[pg.PlotDataItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.key)
        self.data: Waterfall | None = None
        self.cls = 0
        self._labels: list[str] = []

    def sizeHint(self) -> QSize:
        return QSize(360, 260)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, 180)

    def clear_plot(self) -> None:
        self.data = None
        self.bars.setOpts(x=[], height=[])
        for line in self.lines:
            self.plot.removeItem(line)
        self.lines = []
        self.caption.setText("")
        self.key.setText("")

    def set_waterfall(self, data: Waterfall, cls: int, colormap: str = "green_red") -> None:
        self.data, self.cls = data, cls
        n_parts = data.parts.shape[1]
        x_logit = n_parts + 1.0  # the logit bar, set apart from the parts
        cmap = COLORMAPS[colormap]
        parts = np.nan_to_num(data.parts[cls])
        before = np.concatenate([[0.0], np.cumsum(parts)[:-1]])
        logit = float(np.nan_to_num(data.logits[cls]))
        brushes = [pg.mkBrush(*(cmap.pos if v >= 0 else cmap.neg), 200) for v in parts]
        brushes.append(pg.mkBrush(ACCENT))
        self.bars.setOpts(
            x=np.append(np.arange(n_parts, dtype=np.float64), x_logit),
            y0=np.append(before, 0.0),
            height=np.append(parts, logit),
            width=0.7,
            brushes=brushes,
            pens=[pg.mkPen(None)] * (n_parts + 1),
        )
        for line in self.lines:
            self.plot.removeItem(line)
        self.lines = []
        for c in range(data.parts.shape[0]):
            if not np.isfinite(data.parts[c]).all():
                continue
            running = np.concatenate([[0.0], np.cumsum(data.parts[c])])
            xs = np.arange(n_parts + 1) - 0.5
            colour = GRADE_COLOURS[c % len(GRADE_COLOURS)]
            width = 2.5 if c == cls else 1.2
            line = pg.PlotDataItem(xs, running, pen=pg.mkPen(colour, width=width), symbol="o")
            line.setSymbolSize(4 if c != cls else 6)
            line.setSymbolBrush(pg.mkBrush(colour))
            line.setSymbolPen(pg.mkPen(None))
            self.plot.addItem(line)
            self.lines.append(line)
        self._labels = [*data.labels, "logit"]
        self._x_logit = x_logit
        self._set_ticks()
        lo = min(0.0, float(np.nanmin(np.concatenate([before, before + parts, [logit]]))))
        hi = max(0.0, float(np.nanmax(np.concatenate([before, before + parts, [logit]]))))
        pad = 0.08 * (hi - lo or 1.0)
        self.plot.getPlotItem().setXRange(-MARGIN, x_logit + MARGIN, padding=0)
        self.plot.getPlotItem().setYRange(lo - pad, hi + pad, padding=0)
        self.caption.setText(
            f"<span style='color:{TEXT}'>class {cls}: input {parts[0]:+.4g} + Σ Sₖ "
            f"{parts[1:-1].sum():+.4g} + bias {parts[-1]:+.4g} = logit {logit:.6g}</span>"
        )
        self.caption.setToolTip(
            f"sum of the parts {parts.sum():.8g}, logit {logit:.8g}, residual {data.residual[cls]:.1e}"
        )
        self.key.setText(
            f"<span style='color:{_rgb(cmap.pos)}'>■</span>"
            f"<span style='color:{_rgb(cmap.neg)}'>■</span>"
            f"<span style='color:{MUTED}'> class {cls}'s parts </span>"
            f"<span style='color:{ACCENT}'>■</span><span style='color:{MUTED}'> its logit · "
            f"lines: every class's running sum (grade colours)</span>"
        )

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._labels:
            self._set_ticks()

    def _set_ticks(self) -> None:
        """Input, bias and logit always; layer numbers every 1, 2, 5, 10... as the width allows them
        without touching each other (labels placed by their measured width)."""
        labels = self._labels
        n_layers = len(labels) - 3
        axis = self.plot.getPlotItem().getAxis("bottom")
        fm = QFontMetricsF(axis.style.get("tickFont") or axis.font())
        width = self.plot.getPlotItem().getViewBox().width() or self.width()
        per_unit = max(width / (self._x_logit + 2 * MARGIN), 1.0)
        right = (self._x_logit + 2 * MARGIN) * per_unit
        taken: list[tuple[float, float]] = []

        def place(x: float, text: str) -> bool:
            # pyqtgraph drops a tick label that would cross the axis' ends
            centre, half = (x + MARGIN) * per_unit, fm.horizontalAdvance(text) / 2 + 3
            if centre - half < 0 or centre + half > right:
                return False
            if any(centre - half < b and centre + half > a for a, b in taken):
                return False
            taken.append((centre - half, centre + half))
            return True

        ticks = []
        for x, names in (
            (self._x_logit, ("logit", "=")),
            (float(n_layers + 1), ("bias", "b")),
            (0.0, ("input", "in")),
        ):
            text = next((t for t in names if place(x, t)), None)
            if text is not None:
                ticks.append((x, text))
        for step in (1, 2, 5, 10, 20, 50):
            numbers = [k for k in range(step, n_layers + 1, step)]
            spans = [fm.horizontalAdvance(labels[k]) + 6 for k in numbers]
            if not numbers or max(spans) <= step * per_unit:
                break
        ticks += [(float(k), labels[k]) for k in numbers if place(float(k), labels[k])]
        axis.setTicks([sorted(ticks)])

    def parts(self, cls: int) -> np.ndarray:
        """The drawn parts of class ``cls`` (input, S_k per layer, bias)."""
        return np.asarray(self.data.parts[cls]) if self.data is not None else np.zeros(0)
