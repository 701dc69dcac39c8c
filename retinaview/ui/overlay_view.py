"""The photograph with a class map on top: one large view, or a grid of the five classes with linked zoom.

Drawing rules (pyqtgraph's ImageItem performance notes): row-major C-contiguous uint8 images, explicit
levels, lookup tables of 256 entries. The map layer is the prepared uint8 index image at model resolution,
placed on the photograph by a transform; a threshold, mode or colour change only swaps its lookup table, and
opacity / on-off are item properties, so none of them touches pixel data.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from retinaview.engine.requests import ExplainResult
from retinaview.ui.colormaps import COLORMAPS, overlay_lut
from retinaview.ui.theme import GRADE_COLOURS, IMAGE_BACKGROUND, MUTED, TEXT
from retinaview.ui.view_state import KIND_LABELS, ViewState

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

GRID_COLUMNS = 3
EMPTY_TEXT = (
    "Open a folder of fundus photographs\n"
    "File ▸ Open Folder…  (Ctrl+O)  or drop a folder or image here"
)


class Title(pg.LabelItem):
    """A label that does not widen its column: long titles are cut at the view's edge instead of
    squeezing the neighbouring views (pyqtgraph's LabelItem asks for its text's width, as minimum and as
    preferred width; the grid's columns would then differ in width and its linked views in scale)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setFlag(self.GraphicsItemFlag.ItemClipsChildrenToShape)

    def updateMin(self) -> None:
        super().updateMin()
        self.setMinimumWidth(0)
        for hint in (Qt.SizeHint.MinimumSize, Qt.SizeHint.PreferredSize):
            self._sizeHint[hint] = (0, self._sizeHint[hint][1])
        self.updateGeometry()


def link_views(boxes: list[pg.ViewBox]) -> None:
    """Zoom and pan of any of ``boxes`` shown in all: each fits the same photograph rectangle.

    Not pyqtgraph's setXLink / setYLink: those line views up by their position on screen where they overlap
    and copy the range where they do not, which in a grid shrinks the photographs of some cells when the
    cells differ in size by a few pixels.
    """
    syncing = False

    def follow(source: pg.ViewBox) -> None:
        nonlocal syncing
        if syncing:
            return
        syncing = True
        try:
            rect = source.targetRect()
            for box in boxes:
                if box is not source:
                    box.setRange(rect, padding=0)
        finally:
            syncing = False

    for box in boxes:
        box.sigRangeChanged.connect(lambda b, _range, *_: follow(b))


class MapPane:
    """A title, and a view box holding the photograph and the map layer."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int) -> None:
        self.title = Title(justify="left", color=TEXT, size="11pt")
        layout.addItem(self.title, row=2 * row, col=col)
        self.box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.01)
        layout.addItem(self.box, row=2 * row + 1, col=col)
        # The photograph has no levels: uint8 RGB or grey then goes to a QImage as it is, where levels
        # (0, 255) would make pyqtgraph rescale every pixel on each new image (13 ms at 2000 px).
        self.photo = pg.ImageItem()
        self.overlay = pg.ImageItem(levels=(0, 255))
        self.overlay.setZValue(1)
        self.box.addItem(self.photo)
        self.box.addItem(self.overlay)
        self.cls: int | None = None
        self._photo_key: tuple | None = None
        self._index_key: tuple | None = None

    def set_photo(self, key: tuple, image: np.ndarray) -> None:
        if key != self._photo_key:
            self.photo.setImage(image, autoLevels=False)
            self._photo_key = key

    def set_index(self, key: tuple, index: np.ndarray, transform: QTransform) -> None:
        if key != self._index_key:
            self.overlay.setImage(index, levels=(0, 255), autoLevels=False)
            self.overlay.setTransform(transform)
            self._index_key = key

    def clear(self) -> None:
        self.photo.clear()
        self.overlay.clear()
        self._photo_key = self._index_key = None
        self.title.setText("")


class OverlayView(QWidget):
    """Shows an `ExplainResult` as described by a `ViewState`.

    ``lutChanged``: emitted after the overlay's lookup tables changed (benchmarks time slider-to-repaint).
    """

    lutChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: ExplainResult | None = None
        self._photo: np.ndarray | None = None
        self._photo_id = 0
        self._green: np.ndarray | None = None
        self._class_names: tuple[str, ...] = ()
        self.state = ViewState()

        self.single = pg.GraphicsLayoutWidget()
        self.grid = pg.GraphicsLayoutWidget()
        for w in (self.single, self.grid):
            w.setBackground(IMAGE_BACKGROUND)
            w.ci.setContentsMargins(6, 4, 6, 6)
            w.ci.setSpacing(2)
        self.main_pane = MapPane(self.single.ci, 0, 0)
        self.grid_panes = [
            MapPane(self.grid.ci, k // GRID_COLUMNS, k % GRID_COLUMNS) for k in range(5)
        ]
        # The sixth cell of the 2x3 grid holds a legend.
        self.legend = Title(justify="left", color=MUTED, size="10pt")
        self.grid.ci.addItem(self.legend, row=3, col=2)
        for col in range(GRID_COLUMNS):
            self.grid.ci.layout.setColumnStretchFactor(col, 1)
        for row in (1, 3):
            self.grid.ci.layout.setRowStretchFactor(row, 1)
        link_views([pane.box for pane in self.grid_panes])

        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("muted")
        self.empty.setStyleSheet(f"background: {IMAGE_BACKGROUND}; font-size: 13pt;")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.single)
        self.stack.addWidget(self.grid)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    # --- data --------------------------------------------------------------------------------------
    @property
    def result(self) -> ExplainResult | None:
        return self._result

    def panes(self) -> list[MapPane]:
        return self.grid_panes if self.state.grid else [self.main_pane]

    def set_photo(self, photo: np.ndarray, title: str = "") -> None:
        """Show a photograph without a map (while its explanation is computed)."""
        fresh = self._photo is None or photo.shape != self._photo.shape
        self._result = None
        self._set_photo_array(photo)
        for pane in [self.main_pane, *self.grid_panes]:
            pane.overlay.clear()
            pane._index_key = None
            pane.title.setText(title)
        self._draw_photos()
        self.stack.setCurrentWidget(self.grid if self.state.grid else self.single)
        if fresh:
            self.reset_zoom()

    def set_result(self, result: ExplainResult) -> None:
        same_size = self._photo is not None and result.photo.shape == self._photo.shape
        self._result = result
        self._class_names = tuple(result.explanation.class_names) or tuple(
            str(k) for k in range(len(result.explanation.logits))
        )
        if self._photo is not result.photo:
            self._set_photo_array(result.photo)
        self.stack.setCurrentWidget(self.grid if self.state.grid else self.single)
        self.redraw()
        if not same_size:
            self.reset_zoom()

    def clear(self) -> None:
        self._result = None
        self._photo = self._green = None
        for pane in [self.main_pane, *self.grid_panes]:
            pane.clear()
        self.stack.setCurrentWidget(self.empty)

    def _set_photo_array(self, photo: np.ndarray) -> None:
        self._photo = photo
        self._green = None
        self._photo_id += 1

    def _display_photo(self) -> tuple[tuple, np.ndarray]:
        if self.state.green:
            if self._green is None:
                self._green = np.ascontiguousarray(self._photo[..., 1])
            return (self._photo_id, "green"), self._green
        return (self._photo_id, "rgb"), self._photo

    def _draw_photos(self) -> None:
        if self._photo is None:
            return
        key, image = self._display_photo()
        for pane in self.panes():
            pane.set_photo(key, image)

    # --- state -------------------------------------------------------------------------------------
    def set_state(self, state: ViewState) -> None:
        """Apply a new state; only what changed is redrawn."""
        old, self.state = self.state, state
        if state.grid != old.grid and self._photo is not None:
            self.stack.setCurrentWidget(self.grid if state.grid else self.single)
            src = (old.grid and self.grid_panes[0] or self.main_pane).box.viewRect()
            self.redraw()
            self.panes()[0].box.setRange(src, padding=0)
            return
        if state.green != old.green or state.cls != old.cls or state.kind != old.kind:
            self.redraw()
            return
        if state.opacity != old.opacity or state.overlay != old.overlay:
            self._apply_layer_props()
        if (state.threshold, state.mode, state.colormap) != (
            old.threshold,
            old.mode,
            old.colormap,
        ):
            self._apply_luts()

    def shown_classes(self) -> list[int]:
        if self._result is None:
            return []
        if self.state.grid:
            return list(range(min(5, len(self._result.explanation.logits))))
        c = self.state.cls
        return [self._result.grade if c is None else c]

    def current_kind(self) -> str:
        if self._result is None:
            return self.state.kind
        return self.state.kind if self.state.kind in self._result.maps else "input"

    def redraw(self) -> None:
        self._draw_photos()
        result = self._result
        if result is None:
            return
        kind = self.current_kind()
        prepared = result.maps[kind]
        a_y, b_y, a_x, b_x = result.to_photo
        transform = QTransform(a_x, 0, 0, a_y, b_x + 0.5 - 0.5 * a_x, b_y + 0.5 - 0.5 * a_y)
        probs = result.probs
        for pane, c in zip(self.panes(), self.shown_classes(), strict=False):
            name = self._class_names[c] if c < len(self._class_names) else str(c)
            colour = GRADE_COLOURS[c % len(GRADE_COLOURS)]
            mark = (" ◀" if self.state.grid else " ◀ predicted") if c == result.grade else ""
            if result.is_done(c):
                pane.cls = c
                pane.set_index((id(result), kind, c), prepared.index[c], transform)
                detail = "" if self.state.grid else f" · {KIND_LABELS[kind].lower()} map"
            else:
                pane.cls = None
                pane.overlay.clear()
                pane._index_key = None
                detail = " · computing…"
            pane.title.setText(
                f"<span style='color:{colour}; font-weight:600'>{c} · {name}</span>"
                f"<span style='color:{MUTED}'>  {probs[c]:.0%}{detail}{mark}</span>"
            )
        for pane in self.panes()[len(self.shown_classes()) :]:
            pane.overlay.clear()
            pane._index_key = None
        if self.state.grid:
            self.legend.setText(self._legend_html())
        self._apply_layer_props()
        self._apply_luts()

    def _legend_html(self) -> str:
        cmap = COLORMAPS[self.state.colormap]
        pos = "#{:02x}{:02x}{:02x}".format(*cmap.pos)
        neg = "#{:02x}{:02x}{:02x}".format(*cmap.neg)
        return (
            f"<span style='color:{pos}'>■</span> pushes the class score up<br>"
            f"<span style='color:{neg}'>■</span> pushes it down<br>"
            f"threshold {self.state.threshold:.1f} σ · {self.state.mode}"
        )

    def _apply_layer_props(self) -> None:
        for pane in self.panes():
            pane.overlay.setOpacity(self.state.opacity)
            pane.overlay.setVisible(self.state.overlay)

    def _apply_luts(self) -> None:
        result = self._result
        if result is None:
            return
        prepared = result.maps[self.current_kind()]
        cmap = COLORMAPS[self.state.colormap]
        for pane in self.panes():
            if pane.cls is None:
                continue
            cut = prepared.cut_index(pane.cls, self.state.threshold)
            pane.overlay.setLookupTable(overlay_lut(cmap, cut, self.state.mode))
        if self.state.grid:
            self.legend.setText(self._legend_html())
        self.lutChanged.emit()

    def reset_zoom(self) -> None:
        if self._photo is None:
            return
        h, w = self._photo.shape[:2]
        rect = QRectF(0, 0, w, h)
        self.main_pane.box.setRange(rect, padding=0.01)
        self.grid_panes[0].box.setRange(rect, padding=0.01)

    def overlay_mask(self, c: int | None = None) -> np.ndarray:
        """(h, w) bool: pixels of the map that are drawn now (model resolution), for tests and exports."""
        result = self._result
        if result is None:
            return np.zeros((0, 0), bool)
        c = self.shown_classes()[0] if c is None else c
        prepared = result.maps[self.current_kind()]
        cut = prepared.cut_index(c, self.state.threshold)
        lut = overlay_lut(COLORMAPS[self.state.colormap], cut, self.state.mode)
        return lut[prepared.index[c], 3] > 0
