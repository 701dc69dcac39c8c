"""Predicted grade, confidence, ground truth, class probabilities as bars, and the conservation residual.

Everything here is about the selected image: moving to another image shows its name, its ground truth and
"computing" at once, never the previous image's numbers.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from retinaview.engine.requests import ExplainResult
from retinaview.ui.map_legend import METHOD_TIPS, RESIDUAL_TIP, method_label
from retinaview.ui.theme import GRADE_COLOURS, MUTED, PANEL, TEXT

GRADES = 5


class ProbabilityBars(pg.PlotWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=PANEL)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        item = self.getPlotItem()
        item.setYRange(0, 1, padding=0.02)
        item.getAxis("left").setTicks([[(0, "0"), (0.5, "50%"), (1, "100%")]])
        item.getAxis("left").setWidth(38)
        for name in ("left", "bottom"):
            item.getAxis(name).setPen(pg.mkPen(MUTED))
            item.getAxis(name).setTextPen(pg.mkPen(TEXT))
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.addItem(self.bars)
        self.setMinimumHeight(110)
        self._grade_axis(GRADES)

    def _grade_axis(self, n: int) -> None:
        """The x-axis reads the grades 0..n-1, with or without bars."""
        self.getPlotItem().getAxis("bottom").setTicks([[(k, str(k)) for k in range(n)]])
        self.getPlotItem().setXRange(-0.6, n - 0.4, padding=0)

    def sizeHint(self) -> QSize:
        return QSize(260, 130)

    def set_probs(self, probs: np.ndarray | None, grade: int | None) -> None:
        if probs is None:
            self.bars.setOpts(x=[], height=[])
            return
        n = len(probs)
        brushes = [
            pg.mkBrush(GRADE_COLOURS[k % len(GRADE_COLOURS)] if k == grade else "#59606b")
            for k in range(n)
        ]
        self.bars.setOpts(x=np.arange(n), height=np.asarray(probs), width=0.7, brushes=brushes)
        self._grade_axis(n)


class PredictionPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.grade = QLabel("–")
        self.grade.setObjectName("gradeBig")
        self.detail = QLabel("No image")
        self.detail.setObjectName("muted")
        self.bars = ProbabilityBars()
        self.facts = QGridLayout()
        self.facts.setHorizontalSpacing(10)
        self.facts.setVerticalSpacing(2)
        self._values: dict[str, QLabel] = {}
        for row, (key, label) in enumerate(
            (("truth", "Ground truth"), ("residual", "Conservation"), ("time", "Computed in"))
        ):
            name = QLabel(label)
            name.setObjectName("muted")
            value = QLabel("–")
            self.facts.addWidget(name, row, 0)
            self.facts.addWidget(value, row, 1)
            self._values[key] = value
            if key == "residual":
                name.setToolTip(RESIDUAL_TIP)
                value.setToolTip(RESIDUAL_TIP)
                self.check_name = name
        self.facts.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.grade)
        layout.addWidget(self.detail)
        layout.addWidget(self.bars)
        layout.addLayout(self.facts)

    def clear(self, message: str = "No image") -> None:
        self.grade.setText("–")
        self.grade.setStyleSheet("")
        self.detail.setText(message)
        self.detail.setToolTip("")
        self.bars.set_probs(None, None)
        for value in self._values.values():
            value.setText("–")

    def set_pending(
        self,
        name: str,
        truth: int | None,
        probs: np.ndarray | None = None,
        waiting: str = "computing…",
    ) -> None:
        """A newly selected image: its name, its ground truth, and its grade when the folder's grading has
        it already (``probs``); the map's numbers say ``waiting``."""
        if probs is None:
            self.grade.setText("…")
            self.grade.setStyleSheet(f"color: {MUTED}")
            self.bars.set_probs(None, None)
        else:
            g = int(np.argmax(probs))
            self.grade.setText(str(g))
            self.grade.setStyleSheet(f"color: {GRADE_COLOURS[g % len(GRADE_COLOURS)]}")
            self.bars.set_probs(probs, g)
        self.detail.setText(f"{name} · {waiting}")
        self.detail.setToolTip("")
        self._show_truth(truth, None if probs is None else int(np.argmax(probs)))
        muted = f"<span style='color:{MUTED}'>{waiting}</span>"
        self._values["residual"].setText(muted)
        self._values["time"].setText(muted)

    def _show_truth(self, truth: int | None, grade: int | None) -> None:
        if truth is None:
            self._values["truth"].setText("not given")
        elif grade is None:
            self._values["truth"].setText(str(truth))
        else:
            ok = truth == grade
            mark = "agrees ✓" if ok else "disagrees ✗"
            self._values["truth"].setText(
                f"<span style='color:{'#7bd88f' if ok else '#ff6e6e'}'>{truth} · {mark}</span>"
            )

    def set_result(self, result: ExplainResult, truth: int | None) -> None:
        names = result.explanation.class_names
        g = result.grade
        colour = GRADE_COLOURS[g % len(GRADE_COLOURS)]
        name = names[g] if g < len(names) else str(g)
        self.grade.setText(f"{g} · {name}")
        self.grade.setStyleSheet(f"color: {colour}")
        method = result.request.method
        self.detail.setText(f"confidence {result.probs[g]:.0%} · {method_label(method)}")
        self.detail.setToolTip(METHOD_TIPS.get(method, ""))
        self.bars.set_probs(result.probs, g)
        self._show_truth(truth, g)
        quality = getattr(result, "quality", None)
        if quality and quality.startswith("ungradable"):
            # The quality gate refused the photograph: no confident grade is shown for it.
            self.grade.setText(quality.capitalize())
            self.grade.setStyleSheet("color: #ff8a7a")
            self.detail.setText(
                f"model's grade {g} · {name} ({result.probs[g]:.0%}), not to be trusted"
            )
            self.detail.setToolTip(result.quality_detail)
        if result.partial:
            done, total = len(result.done), len(result.probs)
            self._values["residual"].setText(
                f"<span style='color:{MUTED}'>when all are done</span>"
            )
            self._values["time"].setText(
                f"<span style='color:{MUTED}'>{done} of {total} classes so far…</span>"
            )
            return
        check = result.check_name
        # The method's own check, named as the method names it (rfscore: the conservation residual).
        self.check_name.setText(check.split()[0].capitalize() if check else "Check")
        tip = RESIDUAL_TIP if result.request.method == "rfscore" else check
        self.check_name.setToolTip(tip)
        self._values["residual"].setToolTip(tip)
        if check and np.isfinite(result.residual):
            words = check.split(maxsplit=1)
            what = words[1] if len(words) > 1 else check
            self._values["residual"].setText(f"{what} {result.residual:.1e}")
        else:
            self._values["residual"].setText(
                f"<span style='color:{MUTED}'>none for this method</span>"
            )
        cached = " (cached)" if result.cached else ""
        self._values["time"].setText(f"{result.explanation.seconds:.2f} s{cached}")
