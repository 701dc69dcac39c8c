"""The photograph with a class map on top: one large view, or a grid of the five classes with linked zoom.

Drawing rules (pyqtgraph's ImageItem performance notes): row-major C-contiguous uint8 images, explicit
levels, lookup tables of 256 entries. The map layer is the prepared uint8 index image at model resolution,
placed on the photograph by a transform; a threshold, mode or colour change only swaps its lookup table, and
opacity / on-off are item properties, so none of them touches pixel data.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from retinaview.core.common.render import smooth, smooth_norm, smooth_sigma_px
from retinaview.engine.prepare import PreparedMaps, prepare_maps
from retinaview.engine.requests import ExplainResult
from retinaview.ui.colormaps import COLORMAPS, overlay_lut
from retinaview.ui.map_legend import CLASS_MAPS_NOTE, LegendInfo, MapLegend
from retinaview.ui.theme import GRADE_COLOURS, IMAGE_BACKGROUND, MUTED, TEXT
from retinaview.ui.view_state import ViewState, kind_label

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

GRID_CELLS = 6  # five class maps and the note
TITLE_HEIGHT = 26  # pixels of a map title's row
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


def float_maps(result: ExplainResult, kind: str) -> np.ndarray:
    """(C, H, W) float maps of one kind at model resolution (rfscore's ``constant`` = total - input; a
    kind the method does not have: the method's own map)."""
    ex = result.explanation
    return ex.kind(kind if kind in ex.kinds else ex.map_kind)


def fit_rect(photo_hw: tuple[int, int], box_wh: tuple[float, float]) -> QRectF:
    """The view rectangle that shows the whole photograph in a box of ``box_wh`` pixels with the aspect
    locked: spare height goes below the photograph (so it sits right under its title), spare width to
    both sides."""
    h, w = photo_hw
    bw, bh = box_wh
    if bw <= 0 or bh <= 0:
        return QRectF(0, 0, w, h)
    if bh * w > h * bw:
        return QRectF(0, 0, w, w * bh / bw)
    vis_w = h * bw / bh
    return QRectF((w - vis_w) / 2, 0, vis_w, h)


class MapPane:
    """A title, and a view box holding the photograph and the map layer; placed in ``layout`` at grid
    cell (``row``, ``col``) when given (title in row 2 * row, map in 2 * row + 1)."""

    def __init__(self, layout: pg.GraphicsLayout | None = None, row: int = 0, col: int = 0) -> None:
        self.title = Title(justify="left", color=TEXT, size="11pt")
        self.box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.01)
        # The photograph has no levels: uint8 RGB or grey then goes to a QImage as it is, where levels
        # (0, 255) would make pyqtgraph rescale every pixel on each new image (13 ms at 2000 px).
        self.photo = pg.ImageItem()
        self.overlay = pg.ImageItem(levels=(0, 255))
        self.overlay.setZValue(1)
        # The vessel map, when laid under the class map (between the photograph and the map).
        self.underlay = pg.ImageItem(levels=(0, 255))
        self.underlay.setZValue(0.5)
        self.box.addItem(self.photo)
        self.box.addItem(self.underlay)
        self.box.addItem(self.overlay)
        self.cls: int | None = None
        self._photo_key: tuple | None = None
        self._index_key: tuple | None = None
        if layout is not None:
            self.place(layout, row, col)

    def set_photo(self, key: tuple, image: np.ndarray) -> None:
        if key != self._photo_key:
            self.photo.setImage(image, autoLevels=False)
            self._photo_key = key

    def set_index(self, key: tuple, index: np.ndarray, transform: QTransform) -> None:
        if key != self._index_key:
            self.overlay.setImage(index, levels=(0, 255), autoLevels=False)
            self.overlay.setTransform(transform)
            self._index_key = key

    def place(self, layout: pg.GraphicsLayout, row: int, col: int) -> None:
        layout.addItem(self.title, row=2 * row, col=col)
        layout.addItem(self.box, row=2 * row + 1, col=col)

    def clear_map(self) -> None:
        self.overlay.clear()
        self._index_key = None
        self.cls = None

    def set_underlay(
        self, index: np.ndarray | None, transform: QTransform, lut: np.ndarray
    ) -> None:
        if index is None:
            self.underlay.clear()
            return
        self.underlay.setImage(index, levels=(0, 255), autoLevels=False)
        self.underlay.setTransform(transform)
        self.underlay.setLookupTable(lut)

    def clear(self) -> None:
        self.photo.clear()
        self.underlay.clear()
        self.clear_map()
        self._photo_key = None
        self.title.setText("")


class OverlayView(QWidget):
    """Shows an `ExplainResult` as described by a `ViewState`, with a key (colour bar and legend) below.

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
        self._smoothed: dict[str, tuple[PreparedMaps, frozenset[int]]] = {}
        self._smooth_image: tuple | None = None
        self._smooth_cache: dict[tuple[str, int], np.ndarray] = {}
        self._smooth_norm: np.ndarray | None = None
        self._fitted = True
        self.underlay: tuple | None = None
        self.state = ViewState()

        self.single = pg.GraphicsLayoutWidget()
        self.grid = pg.GraphicsLayoutWidget()
        for w in (self.single, self.grid):
            w.setBackground(IMAGE_BACKGROUND)
            w.ci.setContentsMargins(6, 4, 6, 6)
            w.ci.setSpacing(2)
        self.main_pane = MapPane()
        self.main_pane.place(self.single.ci, 0, 0)
        self.single.ci.layout.setRowStretchFactor(1, 1)
        self.grid_panes = [MapPane() for _ in range(5)]
        # The sixth cell of the grid says why the five maps look alike.
        self.note = Title(justify="left", color=MUTED, size="10pt")
        self.note.setText(_wrap(CLASS_MAPS_NOTE, 34))
        self.columns = 0
        self._layout_grid(3)
        link_views([pane.box for pane in self.grid_panes])
        self.grid.installEventFilter(self)
        for pane in [self.main_pane, *self.grid_panes]:
            pane.box.sigRangeChangedManually.connect(self._on_manual_range)
            pane.box.sigResized.connect(self._on_box_resized)
        self._refit = QTimer(self, singleShot=True, interval=0)
        self._refit.timeout.connect(self._fit_if_fitted)

        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("muted")
        self.empty.setStyleSheet(f"background: {IMAGE_BACKGROUND}; font-size: 13pt;")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend = MapLegend()
        self.legend.hide()

        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.single)
        self.stack.addWidget(self.grid)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.legend)

    # --- data --------------------------------------------------------------------------------------
    @property
    def result(self) -> ExplainResult | None:
        return self._result

    def panes(self) -> list[MapPane]:
        return self.grid_panes if self.state.grid else [self.main_pane]

    def show_message(self, text: str) -> None:
        """No photograph: ``text`` in the middle (a folder to open, an image loading, a file not read)."""
        self.clear()
        self.empty.setText(text)

    def set_photo(self, photo: np.ndarray, title: str = "") -> None:
        """Show a photograph without a map (while its explanation is computed)."""
        fresh = self._photo is None or photo.shape != self._photo.shape
        self._result = None
        self._smoothed = {}
        self._set_photo_array(photo)
        for pane in [self.main_pane, *self.grid_panes]:
            pane.clear_map()
            pane.title.setText(title)
        self._draw_photos()
        self.legend.hide()
        self.stack.setCurrentWidget(self.grid if self.state.grid else self.single)
        self._layout_grid(self._best_columns())
        if fresh or self._fitted:
            self.reset_zoom()

    def has_photo(self) -> bool:
        return self._photo is not None

    def set_underlay(
        self,
        index: np.ndarray | None,
        to_photo: tuple[float, float, float, float] = (1.0, 0.0, 1.0, 0.0),
        lut: np.ndarray | None = None,
    ) -> None:
        """Lay a uint8 index image (the vessel map, model resolution, placed by ``to_photo``) under the
        class maps of every pane, drawn through ``lut``; None takes it away."""
        a_y, b_y, a_x, b_x = to_photo
        transform = QTransform(a_x, 0, 0, a_y, b_x + 0.5 - 0.5 * a_x, b_y + 0.5 - 0.5 * a_y)
        self.underlay = None if index is None else (index, transform, lut)
        for pane in [self.main_pane, *self.grid_panes]:
            pane.set_underlay(index, transform, lut)

    def set_result(self, result: ExplainResult) -> None:
        same_size = self._photo is not None and result.photo.shape == self._photo.shape
        self._result = result
        self._smoothed = {}
        self._class_names = tuple(result.explanation.class_names) or tuple(
            str(k) for k in range(len(result.explanation.logits))
        )
        if self._photo is not result.photo:
            self._set_photo_array(result.photo)
        self.stack.setCurrentWidget(self.grid if self.state.grid else self.single)
        self._layout_grid(self._best_columns())
        self.redraw()
        if not same_size or self._fitted:
            self.reset_zoom()

    def clear(self) -> None:
        self._result = None
        self._smoothed = {}
        self._photo = self._green = None
        self.underlay = None
        for pane in [self.main_pane, *self.grid_panes]:
            pane.clear()
        self.legend.hide()
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

    def prepared(self, extra: tuple[int, ...] = ()) -> PreparedMaps | None:
        """The drawn maps of the shown kind: the engine's, or their smoothed copy. Smoothing costs a few
        Gaussian filters per class, on this thread: only the shown classes (and ``extra``) are smoothed,
        each once per image."""
        result = self._result
        if result is None:
            return None
        kind = self.current_kind()
        if not self.state.smooth:
            return result.maps[kind]
        if kind in result.smoothed:  # a final result: smoothed in the engine's worker
            return result.smoothed[kind]
        need = {c for c in (*self.shown_classes(), *extra) if result.is_done(c)}
        hit, have = self._smoothed.get(kind, (None, frozenset()))
        if hit is None or not need <= have:
            ex = result.explanation
            maps = float_maps(result, kind)
            classes = sorted(need | have)
            blurred = np.zeros_like(maps, dtype=np.float32)
            for c in classes:
                blurred[c] = self._smooth_class(result, kind, c, maps[c])
            hit = prepare_maps(blurred, ex.fov, classes)
            self._smoothed[kind] = (hit, frozenset(classes))
        return hit

    def _smooth_class(
        self, result: ExplainResult, kind: str, c: int, score: np.ndarray
    ) -> np.ndarray:
        """One class's smoothed map, computed once per image (partial results of an image reuse the
        classes already smoothed; the field of view's normaliser is shared by the classes)."""
        image = (result.request.generation, result.key)
        if self._smooth_image != image:
            self._smooth_image, self._smooth_cache, self._smooth_norm = image, {}, None
        hit = self._smooth_cache.get((kind, c))
        if hit is None:
            fov = result.explanation.fov
            px = smooth_sigma_px(score.shape[-1])
            if self._smooth_norm is None:
                self._smooth_norm = smooth_norm(fov, score.shape, px)
            hit = self._smooth_cache[(kind, c)] = smooth(score, fov, px, self._smooth_norm)
        return hit

    def smooth_px(self) -> float | None:
        """The smoothed display's Gaussian sigma in map pixels, or None for the raw map."""
        if not self.state.smooth or self._result is None:
            return None
        return smooth_sigma_px(self._result.explanation.maps.shape[-1])

    # --- state -------------------------------------------------------------------------------------
    def set_state(self, state: ViewState) -> None:
        """Apply a new state; only what changed is redrawn."""
        old, self.state = self.state, state
        if state.grid != old.grid and self._photo is not None:
            self.stack.setCurrentWidget(self.grid if state.grid else self.single)
            src = (old.grid and self.grid_panes[0] or self.main_pane).box.viewRect()
            self.redraw()
            if self._fitted:
                self.reset_zoom()
            else:
                self.panes()[0].box.setRange(src, padding=0)
            return
        if (state.green, state.cls, state.kind, state.smooth) != (
            old.green,
            old.cls,
            old.kind,
            old.smooth,
        ):
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
        kinds = self._result.kinds
        return self.state.kind if self.state.kind in kinds else kinds[0]

    def redraw(self) -> None:
        self._draw_photos()
        result = self._result
        if result is None:
            return
        kind = self.current_kind()
        prepared = self.prepared()
        a_y, b_y, a_x, b_x = result.to_photo
        transform = QTransform(a_x, 0, 0, a_y, b_x + 0.5 - 0.5 * a_x, b_y + 0.5 - 0.5 * a_y)
        probs = result.probs
        label = kind_label(kind)
        kind_text = label.lower() if label.endswith("map") else f"{label.lower()} map"
        for pane, c in zip(self.panes(), self.shown_classes(), strict=False):
            name = self._class_names[c] if c < len(self._class_names) else str(c)
            colour = GRADE_COLOURS[c % len(GRADE_COLOURS)]
            mark = (" ◀" if self.state.grid else " ◀ predicted") if c == result.grade else ""
            if result.is_done(c):
                pane.cls = c
                pane.set_index(
                    (id(prepared), kind, self.state.smooth, c), prepared.index[c], transform
                )
                detail = f" · {kind_text}"
            else:
                pane.clear_map()
                detail = " · computing…"
            pane.title.setText(
                f"<span style='color:{colour}; font-weight:600'>{c} · {name}</span>"
                f"<span style='color:{MUTED}'>  {probs[c]:.0%}{detail}{mark}</span>"
            )
        for pane in self.panes()[len(self.shown_classes()) :]:
            pane.clear_map()
        self._apply_layer_props()
        self._apply_luts()

    def legend_info(self) -> LegendInfo | None:
        """What the key under the map says now (None without a map)."""
        result = self._result
        if result is None:
            return None
        classes = self.shown_classes()
        single = not self.state.grid and result.is_done(classes[0])
        c = classes[0]
        name = self._class_names[c] if c < len(self._class_names) else str(c)
        prepared = self.prepared()
        return LegendInfo(
            palette=COLORMAPS[self.state.colormap],
            mode=self.state.mode,
            threshold=self.state.threshold,
            smooth_px=self.smooth_px(),
            class_name=f"{c} · {name}" if single else None,
            sigma=float(prepared.sigma[c]) if single else None,
            kind_label=kind_label(self.current_kind()).removesuffix(" map"),
        )

    def _apply_layer_props(self) -> None:
        for pane in self.panes():
            pane.overlay.setOpacity(self.state.opacity)
            pane.overlay.setVisible(self.state.overlay)

    def _apply_luts(self) -> None:
        result = self._result
        if result is None:
            return
        prepared = self.prepared()
        cmap = COLORMAPS[self.state.colormap]
        for pane in self.panes():
            if pane.cls is None:
                continue
            cut = prepared.cut_index(pane.cls, self.state.threshold)
            pane.overlay.setLookupTable(overlay_lut(cmap, cut, self.state.mode))
        self.legend.set_info(self.legend_info())
        self.legend.setVisible(self.state.overlay)
        self.lutChanged.emit()

    # --- layout and zoom -------------------------------------------------------------------------
    def _layout_grid(self, columns: int) -> None:
        """Place the five maps and the note in ``columns`` columns (2 or 3)."""
        if columns == self.columns:
            return
        ci = self.grid.ci
        for item in [*(i for p in self.grid_panes for i in (p.title, p.box)), self.note]:
            if item in ci.items:
                ci.removeItem(item)
        rows = -(-GRID_CELLS // columns)
        for k, pane in enumerate(self.grid_panes):
            pane.place(ci, k // columns, k % columns)
        last = GRID_CELLS - 1
        ci.addItem(self.note, row=2 * (last // columns) + 1, col=last % columns)
        grid = ci.layout
        for col in range(3):
            grid.setColumnStretchFactor(col, 1 if col < columns else 0)
        for row in range(6):
            grid.setRowStretchFactor(row, 1 if row % 2 and row < 2 * rows else 0)
        self.columns = columns
        self._size_grid_rows()

    def _size_grid_rows(self) -> None:
        """Equal rows: every map row gets the same height (the layout would otherwise share the spare
        height unevenly, and the linked views would show the photographs at different sizes)."""
        grid = self.grid.ci.layout
        rows = -(-GRID_CELLS // max(self.columns, 1))
        spare = self.grid.height() - 10 - rows * (TITLE_HEIGHT + 2) - (rows - 1) * 2
        box_h = max(spare / rows, 40.0)
        for r in range(3):
            on = r < rows
            grid.setRowFixedHeight(2 * r, TITLE_HEIGHT if on else 0)
            grid.setRowFixedHeight(2 * r + 1, box_h if on else 0)

    def _best_columns(self) -> int:
        """2 or 3 columns, whichever gives the larger maps in the grid widget's current size."""
        h, w = self._photo.shape[:2] if self._photo is not None else (1, 1)
        W, H = max(self.grid.width(), 1), max(self.grid.height(), 1)

        def side(cols: int) -> float:
            rows = -(-GRID_CELLS // cols)
            cell_w, cell_h = W / cols, H / rows - TITLE_HEIGHT
            return min(cell_w / w, cell_h / h)

        return max((2, 3), key=side)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._refit.start()

    def eventFilter(self, watched, event) -> bool:
        # The grid's own size (the key below it comes and goes) decides its columns and row heights.
        if watched is self.grid and event.type() == QEvent.Type.Resize:
            self._layout_grid(self._best_columns())
            self._size_grid_rows()
            self._refit.start()
        return super().eventFilter(watched, event)

    def _on_manual_range(self, *_) -> None:
        self._fitted = False

    def _on_box_resized(self, *_) -> None:
        if self._fitted:
            self._refit.start()

    def _fit_if_fitted(self) -> None:
        if self._fitted:
            self.reset_zoom()

    def reset_zoom(self) -> None:
        """Show the whole photograph, right under the titles."""
        if self._photo is None:
            return
        self._fitted = True
        hw = self._photo.shape[:2]
        for box in (self.main_pane.box, self.grid_panes[0].box):
            rect = box.rect()
            box.setRange(fit_rect(hw, (rect.width(), rect.height())), padding=0)

    def overlay_mask(self, c: int | None = None) -> np.ndarray:
        """(h, w) bool: pixels of the map that are drawn now (model resolution), for tests and exports."""
        result = self._result
        if result is None:
            return np.zeros((0, 0), bool)
        c = self.shown_classes()[0] if c is None else c
        prepared = self.prepared((c,))
        cut = prepared.cut_index(c, self.state.threshold)
        lut = overlay_lut(COLORMAPS[self.state.colormap], cut, self.state.mode)
        return lut[prepared.index[c], 3] > 0


def _wrap(text: str, width: int) -> str:
    """Line breaks for a pyqtgraph label (it does not wrap by itself)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "<br>".join(lines)
