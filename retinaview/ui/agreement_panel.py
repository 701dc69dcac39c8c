"""Agreement of reviewers, the model and the ground truth in a review project: quadratic weighted kappa,
accuracy, referable sensitivity and specificity per comparison, and the confusion matrix of the one chosen,
for the whole project or one reviewer. The numbers are `ReviewStore.agreement`'s
(`retinaview.core.common.agreement`); the panel only lays them out.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from retinaview.core.common.agreement import Agreement
from retinaview.core.common.review_store import ReviewStore, ReviewStoreError
from retinaview.ui.theme import ACCENT

__all__ = ["PAIRS", "AgreementPanel"]

# Comparison -> (its label, the reference side, the compared side, what `disagreements` compares against).
PAIRS = {
    "reviewer_vs_truth": ("Reviewer vs ground truth", "truth", "reviewer", "truth"),
    "model_vs_truth": ("Model vs ground truth", "truth", "model", None),
    "reviewer_vs_model": ("Reviewer vs model", "reviewer", "model", "model"),
}
METRICS = (
    ("n", "Images"),
    ("qwk", "Quadratic weighted kappa"),
    ("accuracy", "Same grade"),
    ("sensitivity", "Referable sensitivity"),
    ("specificity", "Referable specificity"),
)


def _pct(p) -> str:
    v = p.value
    return "–" if math.isnan(v) else f"{100 * v:.0f} % ({p.successes}/{p.n})"


def _kappa(a: Agreement) -> str:
    if math.isnan(a.kappa):
        return "–"
    lo, hi = a.kappa_interval
    if math.isnan(lo):
        return f"{a.kappa:.3f}"
    return f"{a.kappa:.3f} [{lo:.2f}, {hi:.2f}]"


class AgreementPanel(QWidget):
    """Signals
    -------
    filterRequested(object)
        A set of file names where the chosen comparison disagrees (for the browser's filter).
    noticeShown(str)
        A one-line message (the database cannot be read).
    """

    filterRequested = Signal(object)
    noticeShown = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: dict[str, dict[str, Agreement]] = {}
        self.store: ReviewStore | None = None
        self.title = QLabel("Agreement")
        self.title.setObjectName("panelTitle")
        self.who = QComboBox()
        self.who.setToolTip("The whole project, or one reviewer")
        self.who.currentIndexChanged.connect(lambda _i: self._fill())
        self.pair = QComboBox()
        self.pair.setToolTip("Which two sets of grades to compare")
        self.pair.currentIndexChanged.connect(lambda _i: self._fill_pair())
        self.values: dict[str, QLabel] = {}
        self.facts = QWidget()
        facts = QGridLayout(self.facts)
        facts.setContentsMargins(0, 0, 0, 0)
        facts.setHorizontalSpacing(12)
        for row, (key, label) in enumerate(METRICS):
            name = QLabel(label)
            name.setObjectName("muted")
            value = QLabel("–")
            facts.addWidget(name, row, 0)
            facts.addWidget(value, row, 1)
            self.values[key] = value
        facts.setColumnStretch(1, 1)
        self.confusion_title = QLabel("")
        self.confusion_title.setObjectName("muted")
        self.confusion_title.setWordWrap(True)
        self.confusion = QTableWidget(5, 5)
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.confusion.setHorizontalHeaderLabels([str(g) for g in range(5)])
        self.confusion.setVerticalHeaderLabels([str(g) for g in range(5)])
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.confusion.verticalHeader().setDefaultSectionSize(30)
        self.confusion.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.confusion.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.confusion.setFixedHeight(
            5 * 30 + self.confusion.horizontalHeader().sizeHint().height() + 4
        )
        self.disagree = QPushButton("Show disagreements")
        self.disagree.setToolTip("Filter the browser to the images where the two grades differ")
        self.disagree.clicked.connect(self.request_filter)
        self.empty = QLabel("No graded images with a second opinion yet.")
        self.empty.setObjectName("muted")
        self.empty.setWordWrap(True)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.who)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(head)
        layout.addWidget(self.pair)
        layout.addWidget(self.empty)
        layout.addWidget(self.facts)
        layout.addWidget(self.confusion_title)
        layout.addWidget(self.confusion)
        layout.addWidget(self.disagree)
        layout.addStretch(1)

    def refresh(self, store: ReviewStore, n_boot: int = 0) -> None:
        """Recompute from the project's database (``n_boot`` bootstrap resamples for the kappa interval;
        0 for a live panel)."""
        self.store = store
        try:
            report = store.agreement(n_boot=n_boot)
        except ReviewStoreError as exc:
            self.noticeShown.emit(" ".join(str(exc).split()))
            return
        self.set_report(report)

    def set_report(self, report: dict[str, dict[str, Agreement]]) -> None:
        """Show `ReviewStore.agreement`'s result: ``{"all" | reviewer: {pair: Agreement}}``."""
        self.report = report
        current = self.who.currentData()
        self.who.blockSignals(True)
        self.who.clear()
        for who in report:
            self.who.addItem("All reviewers" if who == "all" else who, who)
        index = self.who.findData(current)
        self.who.setCurrentIndex(max(index, 0))
        self.who.blockSignals(False)
        self._fill()

    @property
    def pairs(self) -> dict[str, Agreement]:
        return self.report.get(self.who.currentData(), {}) if self.report else {}

    def _fill(self) -> None:
        pairs = self.pairs
        current = self.pair.currentData()
        self.pair.blockSignals(True)
        self.pair.clear()
        for key in pairs:
            self.pair.addItem(PAIRS[key][0], key)
        self.pair.setCurrentIndex(max(self.pair.findData(current), 0))
        self.pair.blockSignals(False)
        self.empty.setVisible(not pairs)
        self.pair.setVisible(bool(pairs))
        self._fill_pair()

    @property
    def selected_pair(self) -> str | None:
        return self.pair.currentData()

    def _fill_pair(self) -> None:
        key = self.selected_pair
        a = self.pairs.get(key) if key else None
        self.facts.setVisible(a is not None)
        self.confusion.setVisible(a is not None)
        self.disagree.setVisible(a is not None)
        self.disagree.setEnabled(a is not None and PAIRS[key][3] is not None)
        if a is None:
            self.confusion_title.setText("")
            return
        self.values["n"].setText(str(a.n))
        self.values["qwk"].setText(_kappa(a))
        self.values["accuracy"].setText(_pct(a.accuracy))
        self.values["sensitivity"].setText(_pct(a.sensitivity))
        self.values["specificity"].setText(_pct(a.specificity))
        _, ref, other, _ = PAIRS[key]
        self.confusion_title.setText(f"Confusion matrix: rows {ref}, columns {other}")
        for i in range(5):
            for j in range(5):
                n = int(a.confusion[i, j])
                item = QTableWidgetItem(str(n) if n else "·")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if n:
                    # Agreement on the diagonal in blue, disagreement in orange (the theme's style sheet
                    # styles table cells, so the cell background cannot carry it; the text does).
                    item.setForeground(QColor(ACCENT) if i == j else QColor("#ffa04a"))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.confusion.setItem(i, j, item)

    def request_filter(self) -> set[str]:
        """Emit the file names where the chosen comparison disagrees (reviewer comparisons only)."""
        key = self.selected_pair
        if self.store is None or key is None or PAIRS[key][3] is None:
            return set()
        who = self.who.currentData()
        reviewers = [w for w in self.report if w != "all"] if who == "all" else [who]
        try:
            files = set().union(
                *(self.store.disagreements(against=PAIRS[key][3], reviewer=r) for r in reviewers)
            )
        except ReviewStoreError as exc:
            self.noticeShown.emit(" ".join(str(exc).split()))
            return set()
        self.filterRequested.emit(files)
        return files
