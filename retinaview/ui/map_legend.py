"""The key under every drawn map: a colour bar in sigma units with the hidden band greyed out, what the two
colours mean, which display is shown (smoothed or raw), and the unit of the score.

The words and colours come from `retinaview.core.common.render` (`legend_lines`, `bar_colours`), which the
PNG export draws too; `ColourBar` paints the bar on screen.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from retinaview.core.common.render import SATURATE_SIGMA, LegendInfo, bar_colours, legend_lines
from retinaview.ui.theme import IMAGE_BACKGROUND, MUTED, TEXT

BAR_TICKS = (-6, -4, -2, 0, 2, 4, 6)
METHOD_LABELS = {
    "rfscore": "Score propagation (exact)",
}
METHOD_TIPS = {
    "rfscore": "Receptive-field score propagation (de la Torre, Valls and Puig, arXiv:1712.08107): each "
    "pixel's share of the class score before softmax. Exact: the map plus the layers' constant terms and "
    "the bias add up to the class score.",
}
RESIDUAL_TIP = (
    "Conservation check: the map of each class, plus what every layer adds as a constant and the bias, "
    "must add up to the class score (logit). The residual is the worst relative error over classes and "
    "layers; near 1e-6 or below means the map accounts for the whole score."
)
CLASS_MAPS_NOTE = (
    "Why the five maps look alike: a lesion can raise the score of every grade at once, the higher grades "
    "more. Compare the strength of a spot across the maps, not whether it is lit."
)


def method_label(method: str) -> str:
    """A clinician's name for an explanation method."""
    return METHOD_LABELS.get(method, method)


class ColourBar(QWidget):
    """A horizontal bar from -6 sigma to +6 sigma in the map's colours; hidden scores drawn dark."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info: LegendInfo | None = None
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(320, 34)

    def set_info(self, info: LegendInfo | None) -> None:
        self.info = info
        self.update()

    def paintEvent(self, event) -> None:
        if self.info is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = painter.fontMetrics()
        w, margin = self.width(), fm.horizontalAdvance("−6σ") // 2 + 4
        bar = QRectF(margin, 2, w - 2 * margin, 12)
        s, rgba = bar_colours(self.info)
        grad = QLinearGradient(bar.left(), 0, bar.right(), 0)
        hidden = QColor("#3a3f47")
        for x, c in zip(np.linspace(0, 1, len(s)), rgba, strict=True):
            colour = QColor(*(int(v) for v in c[:3])) if c[3] > 0 else hidden
            grad.setColorAt(float(x), colour)
        painter.fillRect(bar, grad)
        painter.setPen(QPen(QColor(MUTED)))
        painter.drawRect(bar)
        for tick in BAR_TICKS:
            x = bar.left() + (tick + SATURATE_SIGMA) / (2 * SATURATE_SIGMA) * bar.width()
            painter.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom()) + 3)
            text = "0" if tick == 0 else f"{tick:+d}σ".replace("-", "−")
            tw = fm.horizontalAdvance(text)
            painter.setPen(QPen(QColor(TEXT if tick == 0 else MUTED)))
            painter.drawText(int(x - tw / 2), int(bar.bottom()) + 4 + fm.ascent(), text)
            painter.setPen(QPen(QColor(MUTED)))
        painter.end()


class MapLegend(QWidget):
    """The colour bar and the key's lines, under the overlay."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mapLegend")
        self.setStyleSheet(f"QWidget#mapLegend {{ background: {IMAGE_BACKGROUND}; }}")
        self.bar = ColourBar()
        self.text = QLabel()
        self.text.setObjectName("muted")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 2, 10, 6)
        layout.setSpacing(2)
        layout.addWidget(self.bar)
        layout.addWidget(self.text)

    def set_info(self, info: LegendInfo | None) -> None:
        self.bar.set_info(info)
        if info is None:
            self.text.setText("")
            return
        p = info.palette
        lines = legend_lines(info)
        swatch = "<span style='color:rgb{}'>■</span> "
        first = lines[0].split("; ")
        lines[0] = swatch.format(p.pos) + first[0] + " &nbsp; " + swatch.format(p.neg) + first[1]
        self.text.setText("<br>".join(lines))
