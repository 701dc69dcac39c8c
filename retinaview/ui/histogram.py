"""Histogram of the shown map over the field of view, in sigma units, with the +-n sigma cut lines."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize

from retinaview.engine.prepare import HIST_EDGES, HIST_LIMIT, PreparedMaps
from retinaview.ui.colormaps import Diverging
from retinaview.ui.theme import MUTED, PANEL


class MapHistogram(pg.PlotWidget):
    """Counts of S / sigma (log scale); the lines move with the slider without recomputing anything."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=PANEL)
        self.setMinimumHeight(120)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        item = self.getPlotItem()
        item.setLogMode(x=False, y=True)
        item.showGrid(x=True, y=False, alpha=0.15)
        item.setLabel("bottom", "S / σ over the field of view", color=MUTED)
        item.setLabel("left", "pixels", color=MUTED)
        item.getAxis("left").setWidth(52)
        for name in ("left", "bottom"):
            item.getAxis(name).setPen(pg.mkPen(MUTED))
            item.getAxis(name).setTextPen(pg.mkPen(MUTED))
        self.curve = pg.PlotDataItem(
            stepMode="center", fillLevel=0, pen=pg.mkPen("#8b95a3"), brush=(139, 149, 163, 90)
        )
        self.addItem(self.curve)
        self.pos_line = pg.InfiniteLine(angle=90, movable=False)
        self.neg_line = pg.InfiniteLine(angle=90, movable=False)
        for line in (self.pos_line, self.neg_line):
            line.setZValue(5)
            self.addItem(line)
        self.setXRange(-HIST_LIMIT, HIST_LIMIT, padding=0)
        self.set_counts(None, 0)

    def sizeHint(self) -> QSize:
        return QSize(260, 150)

    def set_counts(self, prepared: PreparedMaps | None, c: int) -> None:
        if prepared is None:
            self.curve.setData([], [])
            # An empty log axis would label every unit from 2 to 9: show 1 to 10^4 pixels instead.
            self.setYRange(0, 4, padding=0)
            return
        self.enableAutoRange(axis="y")
        # log10(count + 1): empty bins stay at the axis instead of -inf.
        counts = prepared.hist[c].astype(np.float64) + 1.0
        self.curve.setData(HIST_EDGES, counts)
        self.setXRange(-HIST_LIMIT, HIST_LIMIT, padding=0)

    def set_cut(self, n: float, mode: str, cmap: Diverging) -> None:
        self.pos_line.setPen(pg.mkPen(cmap.pos, width=2))
        self.neg_line.setPen(pg.mkPen(cmap.neg, width=2))
        self.pos_line.setValue(n)
        self.neg_line.setValue(-n)
        self.pos_line.setVisible(mode in ("positive", "absolute"))
        self.neg_line.setVisible(mode in ("negative", "absolute"))
