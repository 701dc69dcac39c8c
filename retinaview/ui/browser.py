"""The image browser: files of a folder with thumbnail, predicted grade, confidence and ground truth.

`ImageListModel` holds one row per file and is filled as results arrive; `BrowserProxy` filters by grade and
sorts by name, grade, confidence or disagreement; `BrowserWidget` puts them in a list with its controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from retinaview.ui.theme import GRADE_COLOURS, MUTED
from retinaview.ui.thumbnails import ThumbnailLoader

SORT_KEYS = ("name", "grade", "confidence", "disagreement")
SORT_LABELS = {
    "name": "Name",
    "grade": "Predicted grade",
    "confidence": "Confidence",
    "disagreement": "Disagreement",
}
COL_IMAGE, COL_GRADE, COL_CONF, COL_TRUTH = range(4)
HEADERS = ("Image", "Grade", "Conf.", "Truth")
SortRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
ICON_SIZE = 52


@dataclass
class Entry:
    path: Path
    order: int
    truth: int | None = None
    probs: np.ndarray | None = None
    error: str | None = None
    icon: QIcon | None = None
    # The reviewer's saved decision in review mode ("2", "U" for ungradable); None when not graded.
    reviewed: str | None = None

    @property
    def grade(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))

    @property
    def confidence(self) -> float | None:
        return None if self.probs is None else float(np.max(self.probs))

    @property
    def disagreement(self) -> int | None:
        if self.truth is None or self.grade is None:
            return None
        return abs(self.grade - self.truth)


class ImageListModel(QAbstractTableModel):
    """Rows of `Entry`; thumbnails are asked for the first time a row's icon is drawn. ``countsChanged``:
    a row got its grade or its error."""

    countsChanged = Signal()

    def __init__(self, thumbnails: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self._entries: list[Entry] = []
        self._rows: dict[str, int] = {}
        self._thumbs = thumbnails
        self._thumbs.ready.connect(self._on_thumbnail)
        self.class_names: tuple[str, ...] = ()
        self._placeholder = _placeholder_icon()
        # Review mode with the model hidden: the model's grade of an image the reviewer has not graded yet
        # is not shown in the list either (it would tell the answer before the reviewer's own grade).
        self.hide_unreviewed = False

    def set_files(self, paths: list[Path], truth: dict[str, int]) -> None:
        self.beginResetModel()
        self._thumbs.clear()
        self._entries = [Entry(p, i, truth.get(p.stem)) for i, p in enumerate(paths)]
        self._rows = {str(e.path): i for i, e in enumerate(self._entries)}
        self.endResetModel()

    def entries(self) -> list[Entry]:
        return self._entries

    def entry(self, path: Path | str) -> Entry | None:
        row = self._rows.get(str(path))
        return None if row is None else self._entries[row]

    def set_probs(self, path: Path | str, probs: np.ndarray) -> None:
        row = self._rows.get(str(path))
        if row is None:
            return
        e = self._entries[row]
        e.probs, e.error = np.asarray(probs, dtype=np.float64), None
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))
        self.countsChanged.emit()

    def set_reviewed(self, path: Path | str, decision: str | None) -> None:
        """Mark the reviewer's saved decision of an image (``None``: not graded)."""
        row = self._rows.get(str(path))
        if row is None:
            return
        self._entries[row].reviewed = decision
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))

    def set_hide_unreviewed(self, on: bool) -> None:
        self.hide_unreviewed = on
        if self._entries:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._entries) - 1, len(HEADERS) - 1)
            )

    def _masked(self, e: Entry) -> bool:
        return self.hide_unreviewed and e.reviewed is None

    def set_error(self, path: Path | str, message: str) -> None:
        row = self._rows.get(str(path))
        if row is None:
            return
        self._entries[row].error = message
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))
        self.countsChanged.emit()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        e = self._entries[index.row()]
        col = index.column()
        if role == PathRole:
            return str(e.path)
        if role == SortRole:
            return self._sort_value(e, col)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(e, col)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_IMAGE:
            if e.icon is None:
                self._thumbs.request(e.path)
                return self._placeholder
            return e.icon
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._colour(e, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            # The name in full (the list elides long ones in the middle), then where it lies.
            tip = f"{e.path.name}\n{e.path.parent}"
            return f"{tip}\n{e.error}" if e.error else tip
        if role == Qt.ItemDataRole.TextAlignmentRole and col != COL_IMAGE:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def _text(self, e: Entry, col: int) -> str:
        if col == COL_IMAGE:
            return e.path.name if e.reviewed is None else f"✎{e.reviewed}  {e.path.name}"
        if col in (COL_GRADE, COL_CONF, COL_TRUTH) and self._masked(e) and e.probs is not None:
            return "·"
        if col == COL_GRADE:
            # An unreadable file is marked where its grade would be, so its name keeps its full width.
            if e.grade is None:
                return "⚠" if e.error is not None else "–"
            return str(e.grade)
        if col == COL_CONF:
            return "" if e.confidence is None else f"{e.confidence:.0%}"
        if e.truth is None:
            return ""
        if e.grade is None:
            return str(e.truth)
        return f"{e.truth} {'✓' if e.truth == e.grade else '✗'}"

    def _colour(self, e: Entry, col: int):
        if self._masked(e) and e.probs is not None:
            return QBrush(QColor(MUTED))
        if col in (COL_IMAGE, COL_GRADE) and e.error is not None and e.grade is None:
            return QBrush(QColor("#ff8a65"))
        if col == COL_GRADE and e.grade is not None:
            return QBrush(QColor(GRADE_COLOURS[e.grade % len(GRADE_COLOURS)]))
        if col == COL_TRUTH and e.truth is not None and e.grade is not None:
            return QBrush(QColor("#7bd88f" if e.truth == e.grade else "#ff6e6e"))
        if col == COL_CONF:
            return QBrush(QColor(MUTED))
        return None

    @staticmethod
    def _sort_value(e: Entry, col: int):
        # Unknown values sort after known ones in ascending order.
        if col == COL_GRADE:
            return 99 if e.grade is None else e.grade
        if col == COL_CONF:
            return 2.0 if e.confidence is None else e.confidence
        if col == COL_TRUTH:
            return -1 if e.disagreement is None else e.disagreement
        return e.order

    @Slot(str, QImage)
    def _on_thumbnail(self, path: str, image: QImage) -> None:
        row = self._rows.get(path)
        if row is None:
            return
        e = self._entries[row]
        e.icon = self._placeholder if image.isNull() else QIcon(QPixmap.fromImage(image))
        idx = self.index(row, COL_IMAGE)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


def _placeholder_icon() -> QIcon:
    pix = QPixmap(ICON_SIZE, ICON_SIZE)
    pix.fill(QColor("#2a2d33"))
    return QIcon(pix)


class BrowserProxy(QSortFilterProxyModel):
    """Grade filter (``None`` all, 0..4 predicted grade, ``"disagree"``), a set of file names (the review
    agreement panel's disagreements), and the four sort keys."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._grade: int | str | None = None
        self._names: frozenset[str] | None = None
        self.setSortRole(SortRole)
        self.setDynamicSortFilter(True)

    def set_grade_filter(self, grade: int | str | None) -> None:
        self.beginFilterChange()
        self._grade = grade
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_name_filter(self, names: set[str] | None) -> None:
        """Show only these file names (None: all)."""
        self.beginFilterChange()
        self._names = None if names is None else frozenset(names)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:
        e = self.sourceModel().entries()[row]
        if self._names is not None and e.path.name not in self._names:
            return False
        if self._grade is None:
            return True
        if self._grade == "disagree":
            return bool(e.disagreement)
        return e.grade == self._grade

    def sort_by(self, key: str) -> None:
        column, order = {
            "name": (COL_IMAGE, Qt.SortOrder.AscendingOrder),
            "grade": (COL_GRADE, Qt.SortOrder.AscendingOrder),
            "confidence": (COL_CONF, Qt.SortOrder.AscendingOrder),
            "disagreement": (COL_TRUTH, Qt.SortOrder.DescendingOrder),
        }[key]
        self.sort(column, order)


class BrowserWidget(QWidget):
    """List of the folder's images with filter and sort; emits ``currentChanged(Path)``."""

    currentChanged = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.thumbnails = ThumbnailLoader(parent=self)
        self.model = ImageListModel(self.thumbnails, self)
        self.proxy = BrowserProxy(self)
        self.proxy.setSourceModel(self.model)

        self.title = QLabel("No folder open")
        self.title.setObjectName("panelTitle")
        self.count = QLabel("")
        self.count.setObjectName("muted")
        self.filter = QComboBox()
        self.filter.setToolTip("Show only images of one predicted grade, or disagreements")
        self.sort = QComboBox()
        self.sort.setToolTip("Sort the list")
        for key in SORT_KEYS:
            self.sort.addItem(SORT_LABELS[key], key)
        self.set_class_names(("0", "1", "2", "3", "4"))

        self.review_filter = QPushButton()
        self.review_filter.setToolTip("Show all images again")
        self.review_filter.hide()
        self.review_filter.clicked.connect(lambda: self.set_review_filter(None))

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(ICON_SIZE + 8)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(COL_IMAGE, QHeaderView.ResizeMode.Stretch)
        for col in (COL_GRADE, COL_CONF, COL_TRUTH):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(col, 50 if col == COL_GRADE else 46)
        header.setHighlightSections(False)
        header.setSectionsClickable(False)

        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.filter, 1)
        row.addWidget(self.sort, 1)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.setSpacing(6)
        layout.addLayout(head)
        layout.addLayout(row)
        layout.addWidget(self.review_filter)
        layout.addWidget(self.view, 1)

        self.filter.currentIndexChanged.connect(self._on_filter)
        self.sort.currentIndexChanged.connect(self._on_sort)
        self.view.selectionModel().currentRowChanged.connect(self._on_current)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self.model.countsChanged.connect(self._update_count)

    def set_class_names(self, names: tuple[str, ...]) -> None:
        current = self.filter.currentData()
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.addItem("All grades", None)
        for k, name in enumerate(names):
            self.filter.addItem(f"Grade {k} · {name}", k)
        self.filter.addItem("Disagreements", "disagree")
        found = self.filter.findData(current)
        self.filter.setCurrentIndex(max(found, 0))
        self.filter.blockSignals(False)
        self.model.class_names = tuple(names)

    def set_folder(self, folder: Path, paths: list[Path], truth: dict[str, int]) -> None:
        self.title.setText(folder.name or str(folder))
        self.title.setToolTip(str(folder))
        self.model.set_files(paths, truth)
        self._on_sort()
        self._update_count()

    def set_review_filter(self, names: set[str] | None) -> None:
        """Show only the images the review agreement panel lists as disagreements (None: all of them)."""
        self.proxy.set_name_filter(names)
        self.review_filter.setVisible(names is not None)
        if names is not None:
            self.review_filter.setText(f"Review disagreements only ({len(names)}) ✕")
        self._update_count()

    def visible_paths(self) -> list[Path]:
        """The listed images in their order on screen."""
        return [Path(self.proxy.index(r, 0).data(PathRole)) for r in range(self.proxy.rowCount())]

    def current_path(self) -> Path | None:
        idx = self.view.currentIndex()
        return Path(idx.data(PathRole)) if idx.isValid() else None

    def select_path(self, path: Path | str) -> bool:
        for row in range(self.proxy.rowCount()):
            idx = self.proxy.index(row, 0)
            if idx.data(PathRole) == str(path):
                self._select_row(row)
                return True
        return False

    def move(self, step: int) -> None:
        """Select the next (+1), previous (-1), first (-inf) or last (+inf) visible image."""
        n = self.proxy.rowCount()
        if n == 0:
            return
        current = self.view.currentIndex().row()
        if step == float("-inf"):
            row = 0
        elif step == float("inf"):
            row = n - 1
        elif current < 0:
            row = 0
        else:
            row = min(max(current + int(step), 0), n - 1)
        self._select_row(row)

    def _select_row(self, row: int) -> None:
        idx = self.proxy.index(row, 0)
        self.view.setCurrentIndex(idx)
        self.view.scrollTo(idx)

    @Slot()
    def _on_filter(self) -> None:
        self.proxy.set_grade_filter(self.filter.currentData())
        self._update_count()

    @Slot()
    def _on_sort(self) -> None:
        self.proxy.sort_by(self.sort.currentData() or "name")

    def counts(self) -> tuple[int, int, int]:
        """(files, graded, unreadable) of the folder: the numbers the header and the status bar show."""
        entries = self.model.entries()
        graded = sum(e.probs is not None for e in entries)
        unreadable = sum(e.error is not None and e.probs is None for e in entries)
        return len(entries), graded, unreadable

    @Slot()
    def _update_count(self) -> None:
        total, graded, unreadable = self.counts()
        shown = self.proxy.rowCount()
        text = f"{total} images" if shown == total else f"{shown} of {total}"
        if total and graded + unreadable < total:
            text += f" · {graded} graded"
        if unreadable:
            text += f" · {unreadable} unreadable"
        self.count.setText(text)
        self.count.setToolTip(
            f"{total} image files: {graded} graded, {unreadable} unreadable, "
            f"{total - graded - unreadable} waiting"
        )

    @Slot(QModelIndex, QModelIndex)
    def _on_current(self, current: QModelIndex, previous: QModelIndex) -> None:
        if current.isValid():
            self.currentChanged.emit(Path(current.data(PathRole)))
