"""The layer table of the inspector: one row per layer, output layer at the top, input at the bottom.

The table never scrolls sideways: when its columns do not fit, the output shape, the residual, the jump, the
share and the receptive field are hidden in that order (each row's tooltip still gives them, and the title
above the maps the selected layer's), and a long layer name is elided in the middle.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from retinaview.engine.layers import LayerRow, format_shape
from retinaview.ui.theme import MUTED

COLUMNS = ("Layer", "Output", "RF", "Jump", "Σ Sᵢ", "Σ Sₖ", "Share", "Residual")
TIPS = (
    "Layer number (as in the paper: 0 is the input) and module name",
    "Output shape: channels × height × width",
    "Theoretical receptive field of one unit, in input pixels",
    "Distance between neighbouring units' fields, in input pixels",
    "Sum of the input-dependent score S_i at this layer, selected class",
    "Sum of the layer's constant score S_k, selected class",
    "Share of the selected class's logit: S_k of the layer (S_i for the input and the features)",
    "Conservation at this cut: Σ S_i + Σ S_k of the layers above + bias − logit",
)
COL_OUTPUT, COL_JUMP, COL_SI, COL_SK, COL_SHARE, COL_RES = 1, 3, 4, 5, 6, 7
# Hidden in this order when the table is too narrow for every column.
OPTIONAL = (COL_OUTPUT, COL_RES, COL_JUMP, COL_SHARE, 2)
PAD = 20  # a cell's padding (style sheet) and text margins (the item delegate), with a little air


def fmt(v: float, digits: int = 4) -> str:
    v = float(v)
    if not np.isfinite(v):
        return "—"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2e}"
    return f"{v:.{digits}g}"


class LayerTable(QTableWidget):
    """``layerChosen(number)`` when the user selects a row."""

    layerChosen = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(TIPS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(22)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        self.rows: list[LayerRow] = []
        self.numbers: list[int] = []
        self._quiet = False
        self.itemSelectionChanged.connect(self._on_selection)

    def set_rows(self, rows: list[LayerRow], logits: np.ndarray, cls: int) -> None:
        """Fill the table (output layer first); ``cls``: the class whose sums are shown."""
        self.rows = list(reversed(rows))
        self.numbers = [r.number for r in self.rows]
        self._quiet = True
        self.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            cells = (
                row.label,
                format_shape(row.shape),
                str(row.rf),
                str(row.jump),
            )
            for col, text in enumerate(cells):
                self._set(i, col, text, muted=col > 0)
        self._quiet = False
        self.set_class(logits, cls)

    def set_class(self, logits: np.ndarray, cls: int) -> None:
        """Show the sums, share and residual of class ``cls``."""
        for i, row in enumerate(self.rows):
            share = row.share(logits)[cls]
            self._set(i, COL_SI, fmt(row.si_sum[cls]))
            self._set(i, COL_SK, fmt(row.sk_sum[cls]))
            self._set(i, COL_SHARE, _percent(share))
            self._set(i, COL_RES, fmt(row.residual[cls], 2), muted=True)
            self.item(i, 0).setToolTip(
                f"{row.label} · output {format_shape(row.shape)} · RF {row.rf} px, jump {row.jump} px"
                f" · share {_percent(share)} · residual {fmt(row.residual[cls], 2)}"
            )
        self.fit_columns()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_columns()

    def fit_columns(self) -> None:
        """Columns as wide as their text; the optional ones hidden while they do not all fit."""
        fm = self.fontMetrics()
        head = self.horizontalHeader().fontMetrics()
        need = []
        for col in range(self.columnCount()):
            width = head.horizontalAdvance(COLUMNS[col]) + PAD
            for i in range(self.rowCount()):
                item = self.item(i, col)
                if item is not None:
                    width = max(width, fm.horizontalAdvance(item.text()) + PAD)
            need.append(width)
        room = self.viewport().width()
        hidden: set[int] = set()
        for col in OPTIONAL:
            if sum(w for c, w in enumerate(need) if c not in hidden) <= room:
                break
            hidden.add(col)
        # What is left over, the name column gives up (elided in the middle, whole in its tooltip).
        others = sum(w for c, w in enumerate(need) if c not in hidden and c != 0)
        need[0] = max(min(need[0], room - others), 60)
        for col, width in enumerate(need):
            self.setColumnHidden(col, col in hidden)
            self.horizontalHeader().resizeSection(col, width)

    def minimumSizeHint(self) -> QSize:
        return QSize(320, 120)

    def _set(self, i: int, col: int, text: str, muted: bool = False) -> None:
        item = self.item(i, col)
        if item is None:
            item = QTableWidgetItem()
            if col > 0:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(i, col, item)
        item.setText(text)
        if muted:
            item.setForeground(QBrush(QColor(MUTED)))

    def select_number(self, number: int) -> None:
        if number not in self.numbers:
            return
        self._quiet = True
        self.selectRow(self.numbers.index(number))
        self._quiet = False

    def row_of(self, number: int) -> LayerRow:
        return self.rows[self.numbers.index(number)]

    @Slot()
    def _on_selection(self) -> None:
        if self._quiet:
            return
        picked = self.selectionModel().selectedRows()
        if picked:
            self.layerChosen.emit(self.numbers[picked[0].row()])


def _percent(share: float) -> str:
    if not np.isfinite(share):
        return "—"
    return f"{share:+.1%}" if abs(share) < 10 else f"{share:+.3g}×"
