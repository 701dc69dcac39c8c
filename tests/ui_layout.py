"""Layout checks for tests: text that does not fit its widget, and labels that overlap.

A clinician cannot read "synt....jpg" or a header cut at its end. These checks ask Qt's font metrics whether
each visible widget's text fits the width it was given, and whether sibling labels overlap, so a test can
render a panel at a screen size (1440x880, 1920x1080) and fail where the text would be cut. Inside pyqtgraph
views they check the titles (a `LabelItem` whose text is wider than its cell is cut or spills into the next
one), text items that stick out of their plot, and axis tick labels that run into each other.
"""

from __future__ import annotations

import math
import re

import pyqtgraph as pg
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QWidget,
)

SCREEN_SIZES = ((1440, 880), (1920, 1080))
_TAGS = re.compile(r"<[^>]+>")


def _visible(w: QWidget) -> bool:
    return w.isVisible() and w.width() > 0 and w.height() > 0 and not w.visibleRegion().isEmpty()


def _plain(text: str) -> str:
    return _TAGS.sub("", text).replace("&nbsp;", " ").replace("&amp;", "&").strip()


def _label_problem(w: QLabel) -> str | None:
    text = w.text()
    if not text or w.pixmap() is not None and not w.pixmap().isNull():
        return None
    fm = w.fontMetrics()
    room = (
        w.contentsRect().width() - 2 * w.margin() - w.indent()
        if w.indent() > 0
        else w.contentsRect().width() - 2 * w.margin()
    )
    if w.wordWrap():
        # a wrapped label is cut when its wrapped height does not fit, or one word is wider than the room
        words = _plain(text).split()
        widest = max((fm.horizontalAdvance(word) for word in words), default=0)
        if widest > room + 1:
            return f"word wider than the label ({widest} > {room} px)"
        if w.heightForWidth(w.width()) > w.height() + 2:
            return f"wrapped text taller than the label ({w.heightForWidth(w.width())} > {w.height()} px)"
        return None
    lines = _plain(text.replace("<br>", "\n")).splitlines() or [""]
    need = max(fm.horizontalAdvance(line) for line in lines)
    if need > room + 1:
        return f"text {need} px wide in {room} px"
    return None


def text_problems(root: QWidget) -> list[str]:
    """Each visible widget under ``root`` (``root`` included) whose text is cut or elided, one line each."""
    out: list[str] = []
    widgets = [root, *root.findChildren(QWidget)]
    for w in widgets:
        if not _visible(w):
            continue
        name = f"{type(w).__name__} {w.objectName() or ''}".strip()
        problem = None
        if isinstance(w, QLabel):
            problem = _label_problem(w)
            what = _plain(w.text())[:60]
        elif isinstance(w, QAbstractButton):
            what = w.text()
            if what and w.sizeHint().width() > w.width() + 1:
                problem = f"button needs {w.sizeHint().width()} px, has {w.width()}"
        elif isinstance(w, QComboBox):
            what = w.currentText()
            if what and w.minimumSizeHint().width() > w.width() + 1:
                need = w.fontMetrics().horizontalAdvance(what) + 30
                if need > w.width():
                    problem = f"combo text needs {need} px, has {w.width()}"
        elif isinstance(w, QGroupBox):
            what = w.title()
            need = w.fontMetrics().horizontalAdvance(what) + 16
            if what and need > w.width():
                problem = f"group title needs {need} px, has {w.width()}"
        elif isinstance(w, QLineEdit):
            what = w.text()
            if what and w.isReadOnly():
                need = w.fontMetrics().horizontalAdvance(what) + 12
                if need > w.width():
                    problem = f"read-only field needs {need} px, has {w.width()}"
        elif isinstance(w, QHeaderView):
            problem, what = _header_problem(w), "header"
        elif isinstance(w, QAbstractItemView):
            problem, what = _items_problem(w), "items"
        else:
            continue
        if problem:
            out.append(f"{name} {what!r}: {problem}")
    out.extend(overlapping_labels(root))
    out.extend(graphics_text_problems(root))
    out.extend(clipped_sideways(root))
    out.extend(graphics_label_problems(root))
    return out


def clipped_sideways(root: QWidget) -> list[str]:
    """Visible text widgets that reach past the right or left edge of a parent (a panel narrower than its
    content cuts them off; scrolling down is fine, scrolling sideways is not)."""
    out = []
    kinds = (QLabel, QAbstractButton, QComboBox, QGroupBox)
    for w in root.findChildren(QWidget):
        if not isinstance(w, kinds) or not _visible(w):
            continue
        left = w.mapToGlobal(w.rect().topLeft()).x()
        right = w.mapToGlobal(w.rect().topRight()).x()
        parent = w.parentWidget()
        while parent is not None and parent is not root.parentWidget():
            p_left = parent.mapToGlobal(parent.rect().topLeft()).x()
            p_right = parent.mapToGlobal(parent.rect().topRight()).x()
            if right > p_right + 1 or left < p_left - 1:
                text = _plain(w.title() if isinstance(w, QGroupBox) else w.text() or "")[:40]
                out.append(
                    f"{type(w).__name__} {text!r}: cut sideways by {type(parent).__name__} "
                    f"({left}..{right} px in {p_left}..{p_right})"
                )
                break
            parent = parent.parentWidget()
    return out


def graphics_label_problems(root: QWidget) -> list[str]:
    """pyqtgraph labels (map titles, notes) whose text is wider than the room the layout gave them."""
    try:
        import pyqtgraph as pg
    except ImportError:
        return []
    out = []
    for view in root.findChildren(pg.GraphicsView):
        if not _visible(view) or view.scene() is None:
            continue
        for item in view.scene().items():
            if not isinstance(item, pg.LabelItem) or not item.isVisible() or not item.text:
                continue
            need = item.item.boundingRect().width()
            room = item.geometry().width()
            if room > 0 and need > room + 1:
                out.append(
                    f"LabelItem {_plain(item.text)[:40]!r}: text {need:.0f} px wide in {room:.0f} px"
                )
    return out


def _header_problem(h: QHeaderView) -> str | None:
    model = h.model()
    if model is None:
        return None
    fm = h.fontMetrics()
    for i in range(h.count()):
        if h.isSectionHidden(i):
            continue
        text = str(model.headerData(i, h.orientation()) or "")
        if text and fm.horizontalAdvance(text) + 8 > h.sectionSize(i):
            return f"section {text!r} needs {fm.horizontalAdvance(text) + 8} px, has {h.sectionSize(i)}"
    return None


def _items_problem(view: QAbstractItemView) -> str | None:
    """An item whose display text is wider than its visible cell (the view elides it)."""
    model = view.model()
    if model is None or not hasattr(view, "visualRect"):
        return None
    bar = view.horizontalScrollBar()
    if (
        bar.maximum() > 0
        and view.horizontalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    ):
        return f"needs horizontal scrolling ({bar.maximum()} px more than its width)"
    fm = view.fontMetrics()
    rows = min(model.rowCount(), 200)
    cols = model.columnCount()
    for r in range(rows):
        for c in range(cols):
            index = model.index(r, c)
            text = model.data(index)
            if not isinstance(text, str) or not text:
                continue
            rect = view.visualRect(index)
            if rect.isEmpty() or not view.viewport().rect().intersects(rect):
                continue
            icon = view.iconSize().width() + 6 if model.data(index, 1) is not None else 0
            # the delegate's text margins (3 px a side) and a style sheet's usual item padding (4 px a side)
            need = math.ceil(fm.horizontalAdvance(text)) + icon + 14
            if need > rect.width():
                return f"item {text!r} needs {need} px, has {rect.width()}"
    return None


def overlapping_labels(root: QWidget) -> list[str]:
    """Visible, non-empty sibling labels whose rectangles intersect."""
    out = []
    labels = [w for w in root.findChildren(QLabel) if _visible(w) and w.text()]
    by_parent: dict[int, list[QLabel]] = {}
    for w in labels:
        by_parent.setdefault(id(w.parentWidget()), []).append(w)
    for group in by_parent.values():
        for i, a in enumerate(group):
            ra = QRect(a.geometry())
            for b in group[i + 1 :]:
                if ra.intersects(b.geometry()):
                    out.append(
                        f"labels overlap: {_plain(a.text())[:30]!r} and {_plain(b.text())[:30]!r}"
                    )
    return out


def graphics_text_problems(root: QWidget) -> list[str]:
    """Cut or overlapping text inside the visible pyqtgraph views under ``root``."""
    out: list[str] = []
    views = [
        w for w in [root, *root.findChildren(pg.GraphicsView)] if isinstance(w, pg.GraphicsView)
    ]
    for view in views:
        # The viewport covers a frameless view, so the view's own visible region is empty.
        if not (_visible(view) or (view.isVisible() and _visible(view.viewport()))):
            continue
        titles = []
        seen = view.mapToScene(view.viewport().rect()).boundingRect().adjusted(-1, -1, 1, 1)
        for item in view.scene().items():
            if not item.isVisible() or not _shown(item):
                continue
            if isinstance(item, pg.LabelItem):
                text = _plain(item.text.replace("<br>", " "))
                if not text:
                    continue
                need = item.item.boundingRect().width()
                room = item.boundingRect().width()
                if need > room + 1:
                    out.append(f"title {text[:40]!r}: {need:.0f} px wide in {room:.0f} px")
                elif not seen.contains(item.item.sceneBoundingRect()):
                    out.append(f"title {text[:40]!r}: runs past the edge of its view")
                titles.append((text, item.item.sceneBoundingRect()))
            elif isinstance(item, pg.TextItem):
                out.extend(_text_item_problem(item))
            elif isinstance(item, pg.AxisItem):
                out.extend(_tick_problems(item))
        for i, (a, ra) in enumerate(titles):
            for b, rb in titles[i + 1 :]:
                if ra.intersects(rb):
                    out.append(f"titles overlap: {a[:30]!r} and {b[:30]!r}")
    return out


def _shown(item) -> bool:
    parent = item.parentItem()
    while parent is not None:
        if not parent.isVisible():
            return False
        parent = parent.parentItem()
    return True


def _text_item_problem(item: pg.TextItem) -> list[str]:
    text = _plain(
        item.toPlainText() if hasattr(item, "toPlainText") else item.textItem.toPlainText()
    )
    if not text:
        return []
    box = item.getViewBox()
    if box is None or not hasattr(box, "sceneBoundingRect"):
        return []
    inside = box.sceneBoundingRect().adjusted(-1, -1, 1, 1)
    if not inside.contains(item.textItem.sceneBoundingRect()):
        return [f"text {text[:40]!r} sticks out of its plot"]
    return []


def _tick_problems(axis: pg.AxisItem) -> list[str]:
    """Fixed tick labels (``setTicks``) of a horizontal axis that run into each other."""
    levels = getattr(axis, "_tickLevels", None)
    view = axis.linkedView()
    if not levels or view is None or axis.orientation not in ("bottom", "top"):
        return []
    x0, x1 = view.viewRange()[0]
    width = axis.geometry().width()
    if x1 <= x0 or width <= 0:
        return []
    fm = QFontMetricsF(axis.style.get("tickFont") or axis.font())
    spans = []
    for value, text in levels[0]:
        if not x0 <= value <= x1 or not text:
            continue
        centre = (value - x0) / (x1 - x0) * width
        half = fm.horizontalAdvance(text) / 2
        spans.append((centre - half, centre + half, text))
    spans.sort()
    out = []
    for (_a0, a1, a), (b0, _b1, b) in zip(spans, spans[1:], strict=False):
        if b0 < a1 + 2:
            out.append(f"tick labels {a!r} and {b!r} overlap on the {axis.orientation} axis")
    return out
