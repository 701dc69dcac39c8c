"""Feature scores w_cj * f_j at the classifier's input (paper17's layer 16, the paper's figure 12).

One bar per feature for the selected class, the other classes as faint ticks; clicking a bar picks that
feature, whose spatial contribution the inspector then maps onto the photograph.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal

from retinaview.ui.colormaps import COLORMAPS
from retinaview.ui.theme import ACCENT, GRADE_COLOURS, MUTED, PANEL, TEXT


class FeatureBars(pg.PlotWidget):
    """``featureClicked(j)`` when the user clicks feature j's bar."""

    featureClicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=PANEL)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=True, y=False)
        item = self.getPlotItem()
        for name in ("left", "bottom"):
            item.getAxis(name).setPen(pg.mkPen(MUTED))
            item.getAxis(name).setTextPen(pg.mkPen(TEXT))
        item.setLabel("bottom", "feature j")
        item.setLabel("left", "w_cj · f_j")
        item.showGrid(y=True, alpha=0.15)
        self.others = pg.ScatterPlotItem(size=7, symbol="t1", pen=pg.mkPen(None))
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.addItem(self.bars)
        self.addItem(self.others)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen(ACCENT, width=2))
        self.marker.hide()
        self.addItem(self.marker)
        self.features: np.ndarray | None = None
        self.cls = 0
        self.selected: int | None = None
        self.scene().sigMouseClicked.connect(self._on_click)
        self.setToolTip("Click a feature's bar to map its score onto the photograph")

    def sizeHint(self) -> QSize:
        return QSize(360, 220)

    def set_features(
        self, features: np.ndarray | None, cls: int, colormap: str = "green_red"
    ) -> None:
        self.features, self.cls = features, cls
        if features is None:
            self.bars.setOpts(x=[], height=[])
            self.others.setData([], [])
            return
        cmap = COLORMAPS[colormap]
        # The key: which class the bars are, what the triangles are, what a click does.
        self.getPlotItem().setTitle(
            f"<span style='color:{GRADE_COLOURS[cls % len(GRADE_COLOURS)]}'>bars: class {cls}</span>"
            f"<span style='color:{MUTED}'> · ▲ other classes</span>",
            size="9pt",
        )
        row = np.nan_to_num(np.asarray(features[cls], dtype=np.float64))
        x = np.arange(len(row))
        brushes = [pg.mkBrush(*(cmap.pos if v >= 0 else cmap.neg), 220) for v in row]
        self.bars.setOpts(x=x, height=row, width=0.8, brushes=brushes, pens=[None] * len(row))
        spots = []
        for c in range(features.shape[0]):
            if c == cls or not np.isfinite(features[c]).all():
                continue
            colour = GRADE_COLOURS[c % len(GRADE_COLOURS)]
            spots += [
                {"pos": (j, float(features[c, j])), "brush": pg.mkBrush(colour)}
                for j in range(len(row))
            ]
        self.others.setData(spots)
        self.getPlotItem().setXRange(-1, len(row), padding=0)
        self.set_selected(self.selected)

    def set_selected(self, j: int | None) -> None:
        self.selected = j
        self.marker.setVisible(j is not None)
        if j is not None:
            self.marker.setValue(j)

    def _on_click(self, event) -> None:
        if self.features is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = self.getPlotItem().vb.mapSceneToView(event.scenePos())
        j = int(round(pos.x()))
        if 0 <= j < self.features.shape[1]:
            self.set_selected(j)
            self.featureClicked.emit(j)

    def click_feature(self, j: int) -> None:
        """What a click on bar ``j`` does (tests, keyboard)."""
        self.set_selected(j)
        self.featureClicked.emit(j)
