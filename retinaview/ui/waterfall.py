"""How each logit is built: input-dependent part + S_k of every layer + bias = logit (a waterfall chart).

The selected class is drawn as floating bars (each part starts where the running sum stands); every class's
running sum is drawn as a thin step line in its grade colour, so all five logits are built in one picture.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize

from retinaview.engine.layers import Waterfall
from retinaview.ui.colormaps import COLORMAPS
from retinaview.ui.theme import ACCENT, GRADE_COLOURS, MUTED, PANEL, TEXT


class WaterfallPlot(pg.PlotWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=PANEL)
        self.setMenuEnabled(False)
        self.hideButtons()
        item = self.getPlotItem()
        for name in ("left", "bottom"):
            item.getAxis(name).setPen(pg.mkPen(MUTED))
            item.getAxis(name).setTextPen(pg.mkPen(TEXT))
        item.showGrid(y=True, alpha=0.15)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.addItem(self.bars)
        self.zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(MUTED, width=1))
        self.addItem(self.zero)
        self.lines: list[pg.PlotDataItem] = []
        self.caption = pg.TextItem(color=TEXT, anchor=(0, 0))
        self.caption.setZValue(5)
        self.addItem(self.caption)
        self.data: Waterfall | None = None
        self.cls = 0

    def sizeHint(self) -> QSize:
        return QSize(360, 220)

    def clear_plot(self) -> None:
        self.data = None
        self.bars.setOpts(x=[], height=[])
        for line in self.lines:
            self.removeItem(line)
        self.lines = []
        self.caption.setText("")

    def set_waterfall(self, data: Waterfall, cls: int, colormap: str = "green_red") -> None:
        self.data, self.cls = data, cls
        n_parts = data.parts.shape[1]
        x_end = n_parts  # the logit bar
        cmap = COLORMAPS[colormap]
        parts = np.nan_to_num(data.parts[cls])
        before = np.concatenate([[0.0], np.cumsum(parts)[:-1]])
        logit = float(np.nan_to_num(data.logits[cls]))
        brushes = [pg.mkBrush(*(cmap.pos if v >= 0 else cmap.neg), 200) for v in parts]
        brushes.append(pg.mkBrush(ACCENT))
        self.bars.setOpts(
            x=np.arange(n_parts + 1),
            y0=np.append(before, 0.0),
            height=np.append(parts, logit),
            width=0.7,
            brushes=brushes,
            pens=[pg.mkPen(None)] * (n_parts + 1),
        )
        for line in self.lines:
            self.removeItem(line)
        self.lines = []
        for c in range(data.parts.shape[0]):
            if not np.isfinite(data.parts[c]).all():
                continue
            running = np.concatenate([[0.0], np.cumsum(data.parts[c])])
            xs = np.arange(n_parts + 1) - 0.5
            colour = GRADE_COLOURS[c % len(GRADE_COLOURS)]
            width = 2.5 if c == cls else 1.2
            line = pg.PlotDataItem(
                xs, running, stepMode=None, pen=pg.mkPen(colour, width=width), symbol="o"
            )
            line.setSymbolSize(4 if c != cls else 6)
            line.setSymbolBrush(pg.mkBrush(colour))
            line.setSymbolPen(pg.mkPen(None))
            self.addItem(line)
            self.lines.append(line)
        axis = self.getPlotItem().getAxis("bottom")
        labels = [*data.labels, "logit"]
        # Every other layer number when there are many, so the ticks stay readable in a narrow panel.
        step = 2 if len(labels) > 12 else 1
        axis.setTicks(
            [
                [
                    (k, t)
                    for k, t in enumerate(labels)
                    if not t.isdigit() or (int(t) % step == 0 and k < len(labels) - 3)
                ]
            ]
        )
        lo = min(0.0, float(np.nanmin(np.concatenate([before, before + parts, [logit]]))))
        hi = max(0.0, float(np.nanmax(np.concatenate([before, before + parts, [logit]]))))
        pad = 0.08 * (hi - lo or 1.0)
        self.getPlotItem().setXRange(-0.8, x_end + 0.8, padding=0)
        self.getPlotItem().setYRange(lo - pad, hi + 4 * pad, padding=0)
        self.caption.setPos(-0.7, hi + 3.9 * pad)
        self.caption.setHtml(
            f"<span style='color:{TEXT}'>class {cls}: input {parts[0]:+.4g} + Σ Sₖ "
            f"{parts[1:-1].sum():+.4g} + bias {parts[-1]:+.4g} = {parts.sum():.6g}<br>"
            f"logit {logit:.6g} · residual {data.residual[cls]:.1e}</span>"
        )

    def parts(self, cls: int) -> np.ndarray:
        """The drawn parts of class ``cls`` (input, S_k per layer, bias)."""
        return np.asarray(self.data.parts[cls]) if self.data is not None else np.zeros(0)
