"""The layer-by-layer RF score inspector: the paper's explanation of one image, layer by layer, live.

For the selected layer, the five class maps of S_i (top row) and S_k (bottom row) over the photograph, in
input space (Gaussian RF prior) or in the layer's own grid, with the overlay viewer's colours, threshold and
opacity; the layer table; the waterfall of every logit; the feature scores of the classifier's input (paper17's
layer 16) with each feature's map on click; a unit's receptive field and Gaussian prior on click; and a
walk-through from the output layer down to the input.

Everything comes from the one `Explanation` the engine computed (with its layers kept). Mapping a layer to
input space is the only costly step: `LayerMapper` does it in its own thread, once per layer, and caches it,
so selecting a layer that was shown (or mapped ahead, as the walk-through's neighbours are) only swaps
uint8 images and lookup tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QColor, QPainter, QPen, QTransform
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from retinaview.engine import layers as L
from retinaview.engine.layer_mapper import LayerMapper
from retinaview.engine.prepare import HALF_RANGE, SATURATE_SIGMA, ZERO_INDEX
from retinaview.engine.requests import ExplainResult
from retinaview.ui.colormaps import COLORMAPS, overlay_lut
from retinaview.ui.feature_bars import FeatureBars
from retinaview.ui.layer_figures import Look, save_layer_csv, save_layer_sheet, save_walkthrough_gif
from retinaview.ui.layer_table import LayerTable, fmt
from retinaview.ui.overlay_view import MapPane, Title
from retinaview.ui.theme import ACCENT, GRADE_COLOURS, IMAGE_BACKGROUND, MUTED, TEXT
from retinaview.ui.view_state import ViewState
from retinaview.ui.waterfall import WaterfallPlot

WALK_MS = 1200
ROWS = ("Sᵢ", "Sₖ")
SPACE_LABELS = {"input": "Input space", "hidden": "Hidden space"}


class _MapGrid(pg.GraphicsLayoutWidget):
    """Columns of equal width whatever their titles say: linked views with locked aspect must all have the
    same size, or each one's aspect correction widens the shared range and the photographs shrink."""

    COLUMNS = 5

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "ci", None) is None:  # GraphicsView's constructor resizes before ci exists
            return
        layout = self.ci.layout
        left, _top, right, _bottom = layout.getContentsMargins()
        spare = self.width() - left - right - layout.horizontalSpacing() * (self.COLUMNS - 1)
        for col in range(self.COLUMNS):
            layout.setColumnFixedWidth(col, max(spare / self.COLUMNS - 2, 20))


MODE_WORDS = {"positive": "for (+)", "negative": "against (−)", "absolute": "both (|S|)"}


class _ColourBar(QWidget):
    """The overlay's colours from -SATURATE_SIGMA to +SATURATE_SIGMA sigma, blank where the cut hides them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState()
        self.setFixedSize(230, 30)

    def set_state(self, state: ViewState) -> None:
        self.state = state
        self.update()

    def paintEvent(self, _event) -> None:
        st = self.state
        cut = st.threshold / SATURATE_SIGMA * HALF_RANGE
        lut = overlay_lut(COLORMAPS[st.colormap], cut, st.mode)
        painter = QPainter(self)
        back = QColor(IMAGE_BACKGROUND)
        w, bar_h = self.width(), 12
        painter.fillRect(0, 0, w, bar_h, back)
        for x in range(w):
            index = int(round(ZERO_INDEX + (2 * (x + 0.5) / w - 1) * HALF_RANGE))
            r, g, b, a = (int(v) for v in lut[min(max(index, 1), 255)])
            alpha = a / 255 * st.opacity
            colour = QColor(
                round(r * alpha + back.red() * (1 - alpha)),
                round(g * alpha + back.green() * (1 - alpha)),
                round(b * alpha + back.blue() * (1 - alpha)),
            )
            painter.fillRect(x, 0, 1, bar_h, colour)
        painter.setPen(QColor(MUTED))
        fm = painter.fontMetrics()
        top = bar_h + 2
        half = int(SATURATE_SIGMA)
        for k in (-half, -half // 2, 0, half // 2, half):
            x = round((k / SATURATE_SIGMA + 1) / 2 * (w - 1))
            painter.drawLine(x, bar_h, x, bar_h + 2)
            text = (
                f"{k}σ".replace("-", "−") if abs(k) == SATURATE_SIGMA else str(k).replace("-", "−")
            )
            tw = fm.horizontalAdvance(text)
            left = min(max(x - tw // 2, 0), w - tw)
            painter.drawText(left, top, tw, fm.height(), Qt.AlignmentFlag.AlignLeft, text)
        painter.end()


class ColourKey(QWidget):
    """What the colours of the inspector's maps mean: a colour bar in sigma and what is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLabel("Colour: score per pixel")
        self.name.setObjectName("muted")
        self.name.setToolTip(
            "Each map's score per input pixel, in units of σ, the map's standard deviation over the field "
            "of view (each class and row has its own σ)."
        )
        self.bar = _ColourBar()
        self.shown = QLabel()
        self.shown.setObjectName("muted")
        self.shown.setWordWrap(True)
        self.shown.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 0)
        row.setSpacing(8)
        row.addWidget(self.name)
        row.addWidget(self.bar)
        row.addWidget(self.shown, 1)
        self.set_state(ViewState())

    def set_state(self, state: ViewState) -> None:
        self.bar.set_state(state)
        what = MODE_WORDS.get(state.mode, state.mode)
        self.shown.setText(
            f"shown: {what} beyond {state.threshold:.1f}σ · saturates at {SATURATE_SIGMA:.0f}σ"
        )


def _prior_lut() -> np.ndarray:
    """Cyan, transparent at 0 and half-opaque at the prior's peak."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, :3] = (80, 220, 255)
    lut[:, 3] = np.linspace(0, 150, 256).astype(np.uint8)
    return lut


class LayerInspector(QWidget):
    """Signals: ``layerShown(number)`` once a layer's maps are drawn; ``exportDone(path, error)`` after an
    export (error None on success); ``unitPicked(number, i, j)`` after a click on a unit."""

    layerShown = Signal(int)
    exportDone = Signal(object, object)
    unitPicked = Signal(int, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: ExplainResult | None = None
        self.ex = None
        self.rows: list[L.LayerRow] = []
        self.number: int | None = None
        self.asked_number: int | None = None
        self.space = "input"
        self.feature: int | None = None
        self.maps: L.LayerMaps | None = None
        self.state = ViewState()
        self.unit: tuple[int, int] | None = None
        # The map the unit was picked on (row 0 S_i or 1 S_k, class): its value is the one reported.
        self.unit_map: tuple[int, int] | None = None
        self._photo_id = 0
        self._wanted_key = None
        self._shown_key = None
        self._walking = False
        self._build()
        self.mapper = LayerMapper(parent=self)
        self.mapper.mapped.connect(self._on_mapped)
        self.mapper.failed.connect(self._on_map_failed)
        self.mapper.jobDone.connect(self._on_job_done)

    # --- construction ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.title = QLabel("Layer inspector · open an image")
        self.title.setObjectName("panelTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.up_button = self._tool("▲", "Layer above, towards the output (PgUp)", self.step_up)
        self.down_button = self._tool(
            "▼", "Layer below, towards the input (PgDown)", self.step_down
        )
        self.play_button = self._tool("▶ Walk", "Walk from the output layer down to the input (W)")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self.play)
        self.autoplay = QCheckBox("Autoplay")
        self.autoplay.setToolTip("Start the walk-through on every new image, and loop it")
        self.space_box = QComboBox()
        for key, label in SPACE_LABELS.items():
            self.space_box.addItem(label, key)
        self.space_box.setToolTip(
            "Input space: each unit's score spread over its receptive field with the Gaussian prior.\n"
            "Hidden space: one square per unit, on the layer's own grid. (H toggles)"
        )
        self.space_box.currentIndexChanged.connect(
            lambda _=0: self.set_space(self.space_box.currentData())
        )
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for text, slot in (
            ("Walk-through as animated GIF…", self.choose_gif),
            ("Layer sheet (all layers × classes) as PNG…", self.choose_sheet),
            ("Per-layer sums as CSV…", self.choose_csv),
        ):
            action = QAction(text, menu)
            action.triggered.connect(slot)
            menu.addAction(action)
        self.export_button.setMenu(menu)
        self.export_menu = menu
        # The title on its own line (wrapped when narrow), the controls below it: neither cuts the other.
        self.title.setWordWrap(True)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.title.setContentsMargins(8, 6, 8, 0)
        head = QHBoxLayout()
        head.setContentsMargins(8, 2, 8, 2)
        head.setSpacing(6)
        for w in (
            self.up_button,
            self.down_button,
            self.play_button,
            self.autoplay,
            self.space_box,
            self.export_button,
        ):
            head.addWidget(w)
        head.addStretch(1)

        self.grid = _MapGrid()
        self.grid.setBackground(IMAGE_BACKGROUND)
        self.grid.ci.setContentsMargins(4, 2, 4, 4)
        self.grid.ci.setSpacing(2)
        # Grid rows: 1 the S_i heading, 2-3 S_i titles and maps, 5 the S_k heading, 6-7 S_k titles and maps
        # (a MapPane at pane row r puts its title on grid row 2r and its view on 2r + 1).
        self.row_titles = [Title(justify="left", color=TEXT, size="9.5pt") for _ in ROWS]
        for row, heading in zip((1, 5), self.row_titles, strict=True):
            self.grid.ci.addItem(heading, row=row, col=0, colspan=5)
        self.panes: list[list[MapPane]] = [
            [MapPane(self.grid.ci, pane_row, c) for c in range(5)] for pane_row in (1, 3)
        ]
        first = self.panes[0][0].box
        self.rf_rects: list[QGraphicsRectItem] = []
        self.priors: list[pg.ImageItem] = []
        pen = QPen(pg.mkColor(ACCENT))
        pen.setWidthF(2.0)
        pen.setCosmetic(True)
        lut = _prior_lut()
        for pane in self.all_panes():
            if pane.box is not first:
                pane.box.setXLink(first)
                pane.box.setYLink(first)
            rect = QGraphicsRectItem()
            rect.setPen(pen)
            rect.setZValue(3)
            rect.hide()
            pane.box.addItem(rect)
            prior = pg.ImageItem()
            prior.setLookupTable(lut)
            prior.setZValue(2)
            prior.hide()
            pane.box.addItem(prior)
            self.rf_rects.append(rect)
            self.priors.append(prior)
        # Until the user zooms, the maps are refitted whenever the views change size: a range set while the
        # layout was still settling would otherwise stay too wide in the linked views.
        self._fit = True
        self._fit_timer = QTimer(self, singleShot=True, interval=0)
        self._fit_timer.timeout.connect(self._refit)
        for pane in self.all_panes():
            pane.box.sigResized.connect(self._on_box_resized)
            pane.box.sigRangeChangedManually.connect(self._on_manual_zoom)
        for col in range(5):
            self.grid.ci.layout.setColumnStretchFactor(col, 1)
        self.grid.scene().sigMouseMoved.connect(self._on_hover)
        self.grid.scene().sigMouseClicked.connect(self._on_click)
        self.value = QLabel(
            "Hover over a map for its value; click a unit to see its receptive field"
        )
        self.value.setObjectName("muted")
        self.value.setContentsMargins(8, 2, 8, 2)
        self.value.setWordWrap(True)
        self.value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.key = ColourKey()

        self.table = LayerTable()
        self.table.layerChosen.connect(self.set_layer)
        self.waterfall = WaterfallPlot()
        self.features = FeatureBars()
        self.features.featureClicked.connect(self.show_feature)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.waterfall, "How each logit is built")
        self.tabs.addTab(self.features, "Feature scores")
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.table)
        bottom.addWidget(self.tabs)
        bottom.setStretchFactor(0, 1)
        bottom.setStretchFactor(1, 1)
        bottom.setChildrenCollapsible(False)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(0)
        top_layout.addWidget(self.title)
        top_layout.addLayout(head)
        top_layout.addWidget(self.grid, 1)
        top_layout.addWidget(self.key)
        top_layout.addWidget(self.value)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        # The maps' size is set by the width (five square columns): height beyond what they need goes to
        # the table and the charts, until the user moves the divider.
        self._user_split = False
        self.splitter.splitterMoved.connect(self._on_split_moved)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self.walk_timer = QTimer(self, interval=WALK_MS)
        self.walk_timer.timeout.connect(self._walk_step)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._user_split:
            self._balance()

    @Slot()
    def _on_split_moved(self, *_args) -> None:
        self._user_split = True

    def _balance(self) -> None:
        total = self.splitter.height() - self.splitter.handleWidth()
        column = max(self.width() - 16, 100) / 5
        text = self.title.sizeHint().height() + self.export_button.sizeHint().height()
        text += self.key.sizeHint().height() + self.value.sizeHint().height()
        # two rows of maps, each under a heading and two lines of class title
        top = text + 2 * (column + 3 * self.fontMetrics().height() + 12)
        top = min(max(top, 0.45 * total), total - 260)
        self.splitter.setSizes([round(top), round(total - top)])

    def _tool(self, text: str, tip: str, slot=None) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        if slot is not None:
            button.clicked.connect(slot)
        return button

    def all_panes(self) -> list[MapPane]:
        return [pane for row in self.panes for pane in row]

    # --- inputs ------------------------------------------------------------------------------------
    def set_result(self, result: ExplainResult) -> None:
        """Show a new explained image (its explanation must have kept its layers)."""
        same_image = self.result is not None and result.key == self.result.key
        self.result, self.ex = result, result.explanation
        ex = self.ex
        if not ex.layers:
            self.rows = []
            self.title.setText("Layer inspector · this explanation has no layers")
            self.table.setRowCount(0)
            self.waterfall.clear_plot()
            return
        self.rows = L.layer_rows(ex)
        if not same_image:
            self._photo_id += 1
            self.unit = None
            self.feature = None
        self.table.set_rows(self.rows, np.asarray(ex.logits), self.cls())
        self.tabs.setTabEnabled(1, ex.features is not None)
        self._update_charts()
        numbers = L.layer_numbers(ex)
        wanted = self.asked_number if self.asked_number is not None else self.number
        if wanted not in numbers:
            wanted = len(ex.layers)
        if self.autoplay.isChecked() and not same_image:
            wanted = L.walk_order(ex)[0]
            self._walking = True
            self.play_button.setChecked(True)
        self.number = None
        self.set_layer(wanted)
        if not same_image:
            self.reset_zoom()

    def set_state(self, state: ViewState) -> None:
        """The overlay viewer's state: colours, threshold, mode, opacity, overlay on/off, class, green."""
        old, self.state = self.state, state
        if self.ex is None or not self.rows:
            return
        if state.green != old.green:
            self._draw_photos(force=True)
        if state.cls != old.cls:
            self.table.set_class(np.asarray(self.ex.logits), self.cls())
            self._update_charts()
        elif state.colormap != old.colormap:
            self._update_charts()
        self._apply_luts()

    def cls(self) -> int:
        """The class the table, the waterfall and the feature chart show: the viewer's, or the predicted."""
        if self.ex is None:
            return 0
        c = self.state.cls
        return int(np.argmax(self.ex.logits)) if c is None else min(c, len(self.ex.logits) - 1)

    # --- layer selection ---------------------------------------------------------------------------
    @Slot(int)
    def set_layer(self, number: int) -> None:
        """Show layer ``number`` (0 = input, 1..L explained layers, L + 1 = the classifier's features)."""
        self.asked_number = int(number)
        if self.ex is None or not self.rows:
            return
        numbers = L.layer_numbers(self.ex)
        number = min(max(int(number), numbers[0]), numbers[-1])
        changed = number != self.number
        self.number = number
        self.asked_number = None
        if number == L.feature_number(self.ex):
            if self.feature is None:
                self.feature = L.top_feature(self.ex, self.cls())
            self.features.set_selected(self.feature)
            self.tabs.setCurrentWidget(self.features)
        self.table.select_number(number)
        if changed:
            self._clear_unit()
        self._request()

    def step_down(self) -> None:
        """One layer towards the input."""
        if self.number is not None:
            self._step(+1)

    def step_up(self) -> None:
        """One layer towards the output."""
        if self.number is not None:
            self._step(-1)

    def _step(self, direction: int) -> None:
        order = L.walk_order(self.ex)
        k = order.index(self.number) + direction
        if 0 <= k < len(order):
            self.set_layer(order[k])

    def set_space(self, space: str) -> None:
        """``"input"``: maps spread to input pixels with the Gaussian prior; ``"hidden"``: the layer's grid."""
        if space not in L.SPACES:
            raise ValueError(f"space must be one of {L.SPACES}")
        self.space = space
        self.space_box.blockSignals(True)
        self.space_box.setCurrentIndex(list(SPACE_LABELS).index(space))
        self.space_box.blockSignals(False)
        self._request()

    def toggle_space(self) -> None:
        self.set_space("hidden" if self.space == "input" else "input")

    @Slot(int)
    def show_feature(self, j: int) -> None:
        """Show feature ``j``'s spatial contribution (on the last layer's grid, mapped like that layer)."""
        if self.ex is None or self.ex.features is None:
            return
        self.feature = int(j)
        self.features.set_selected(self.feature)
        number = L.feature_number(self.ex)
        if self.number != number:
            self.set_layer(number)
        else:
            self._request()

    def _key(self, number: int, space: str | None = None, feature: int | None = None):
        done = int(np.isfinite(np.asarray(self.ex.logits)).sum()) + int(
            np.isfinite(self.ex.input[:, 0, 0]).sum()
        )
        space = space or self.space
        if number == L.INPUT_LAYER:
            space = "input"
        feat = feature if number == L.feature_number(self.ex) else None
        return (self.result.key, done, number, space, feat)

    def _request(self) -> None:
        number = self.number
        key = self._key(number, feature=self.feature)
        order = L.walk_order(self.ex)
        k = order.index(number)
        ahead = [
            (self._key(n, feature=self.feature), self.ex)
            for n in (order[k + 1 : k + 2] + order[max(k - 1, 0) : k])
        ]
        self._wanted_key = key
        maps = self.mapper.want(key, self.ex, ahead)
        if maps is not None:
            self._show(key, maps)
        else:
            self._set_title(mapping=True)

    @Slot(object, object)
    def _on_mapped(self, key, maps: L.LayerMaps) -> None:
        if self.ex is not None and key == self._wanted_key:
            self._show(key, maps)

    @Slot(object, str)
    def _on_map_failed(self, key, message: str) -> None:
        if key == self._wanted_key:
            self.title.setText(f"⚠ mapping failed: {message}")

    # --- drawing -----------------------------------------------------------------------------------
    def _show(self, key, maps: L.LayerMaps) -> None:
        self.maps, self._shown_key = maps, key
        self._draw_photos()
        a_y, b_y, a_x, b_x = self.result.to_photo
        g_ay, g_by, g_ax, g_bx = maps.grid
        sy, sx = a_y * g_ay, a_x * g_ax
        transform = QTransform(
            sx, 0, 0, sy, a_x * g_bx + b_x + 0.5 - 0.5 * sx, a_y * g_by + b_y + 0.5 - 0.5 * sy
        )
        n = min(5, len(self.ex.logits))
        names = self.ex.class_names or tuple(str(c) for c in range(n))
        grade = int(np.argmax(self.ex.logits))
        ident = (self.result.key, maps.number, maps.space, maps.feature, id(maps))
        for row, prepared in enumerate((maps.si, maps.sk)):
            sums = maps.si_sum if row == 0 else maps.sk_sum
            self.row_titles[row].setText(self._row_heading(row, prepared is not None))
            for c in range(5):
                pane = self.panes[row][c]
                if c >= n or prepared is None:
                    pane.overlay.clear()
                    pane._index_key = None
                    pane.cls = None
                    pane.title.setText("")
                    continue
                pane.cls = c
                pane.set_index((ident, row, c), prepared.index[c], transform)
                colour = GRADE_COLOURS[c % len(GRADE_COLOURS)]
                name = names[c] if c < len(names) else str(c)
                mark = " ◀" if c == grade else ""
                # Two lines, so that a column as narrow as a 1440-pixel screen leaves still holds both.
                pane.title.setText(
                    f"<span style='color:{colour}; font-weight:600'>{c} {name}{mark}</span><br>"
                    f"<span style='color:{MUTED}'>Σ {fmt(sums[c])}</span>",
                    size="9pt",
                )
        self._apply_luts()
        self._set_title()
        self._draw_unit()
        self.layerShown.emit(maps.number)

    def _row_heading(self, row: int, drawn: bool) -> str:
        """The line above a row of maps: what the maps are, and what ◀ and Σ mean (short: one line at
        the narrowest inspector)."""
        what = self._row_label(row) or ROWS[row]
        if not drawn:
            return f"<span style='color:{MUTED}'>{what} · none at this layer</span>"
        if self.number == L.INPUT_LAYER:
            text = "x · ∂f/∂x per pixel" if row == 0 else "all Sₖ and the bias, in input space"
        elif self.number == L.feature_number(self.ex):
            text = "w_cj · f_j on the last layer's grid"
        elif row == 0:
            text = f"input-dependent score of layer {self.number}"
        else:
            text = f"constant score of layer {self.number}"
        return (
            f"<span style='color:{TEXT}; font-weight:600'>{what}</span>"
            f"<span style='color:{MUTED}'> · {text} · Σ sum · ◀ predicted</span>"
        )

    def _row_label(self, row: int) -> str:
        if self.number == L.INPUT_LAYER:
            return "input" if row == 0 else "constants"
        if self.number == L.feature_number(self.ex):
            return f"feature {self.feature}" if row == 0 else ""
        return ROWS[row]

    def _set_title(self, mapping: bool = False) -> None:
        if self.number is None:
            return
        row = self.table.row_of(self.number)
        where = "input space" if (self.space == "input" or self.number == 0) else "hidden space"
        name = row.name if row.number else "input (the photograph as the model sees it)"
        if self.number == L.feature_number(self.ex):
            name = f"features · feature {self.feature} on {self.ex.layers[-1].name}'s grid"
        detail = f"receptive field {row.rf} px · jump {row.jump} px"
        busy = f"  <span style='color:{ACCENT}'>mapping…</span>" if mapping else ""
        self.title.setText(
            f"<b>Layer {self.number}</b> · {name}"
            f"<span style='color:{MUTED}'>  ·  {detail}  ·  {where}</span>{busy}"
        )

    def _draw_photos(self, force: bool = False) -> None:
        if self.result is None:
            return
        photo = self.result.photo
        key = (self._photo_id, "green" if self.state.green else "rgb")
        if self.state.green:
            photo = np.ascontiguousarray(photo[..., 1])
        for pane in self.all_panes():
            if force:
                pane._photo_key = None
            pane.set_photo(key, photo)

    def _apply_luts(self) -> None:
        self.key.set_state(self.state)
        maps = self.maps
        if maps is None:
            return
        cmap = COLORMAPS[self.state.colormap]
        for row, prepared in enumerate((maps.si, maps.sk)):
            for pane in self.panes[row]:
                pane.overlay.setOpacity(self.state.opacity)
                pane.overlay.setVisible(self.state.overlay)
                if pane.cls is None or prepared is None:
                    continue
                cut = prepared.cut_index(pane.cls, self.state.threshold)
                pane.overlay.setLookupTable(overlay_lut(cmap, cut, self.state.mode))

    def _update_charts(self) -> None:
        ex = self.ex
        c = self.cls()
        self.waterfall.set_waterfall(L.waterfall(ex), c, self.state.colormap)
        self.features.set_features(ex.features, c, self.state.colormap)

    def reset_zoom(self) -> None:
        """Fit the photograph in the views (and keep it fitted as they resize, until the user zooms)."""
        self._fit = True
        self._refit()

    def _refit(self) -> None:
        if self.result is None:
            return
        h, w = self.result.photo.shape[:2]
        self.panes[0][0].box.setRange(QRectF(0, 0, w, h), padding=0.01)

    def _on_box_resized(self, *_args) -> None:
        if self._fit:
            self._fit_timer.start()

    def _on_manual_zoom(self, *_args) -> None:
        self._fit = False

    def view_rect(self) -> QRectF:
        return self.panes[0][0].box.viewRect()

    def set_view_rect(self, rect: QRectF) -> None:
        """Zoom and pan like another view (the overlay viewer's) of the same photograph."""
        self._fit = False
        self.panes[0][0].box.setRange(rect, padding=0)

    # --- hover and click ---------------------------------------------------------------------------
    def _pane_at(self, scene_pos) -> tuple[int, int, MapPane] | None:
        for row in range(2):
            for c, pane in enumerate(self.panes[row]):
                if pane.box.sceneBoundingRect().contains(scene_pos):
                    return row, c, pane
        return None

    def _model_point(self, pane: MapPane, scene_pos) -> tuple[float, float]:
        p = pane.box.mapSceneToView(scene_pos)
        a_y, b_y, a_x, b_x = self.result.to_photo
        return (p.y() - 0.5 - b_y) / a_y, (p.x() - 0.5 - b_x) / a_x

    def _on_hover(self, scene_pos) -> None:
        if self.maps is None:
            return
        hit = self._pane_at(scene_pos)
        if hit is None:
            return
        row, c, pane = hit
        if pane.cls is None:
            return
        y, x = self._model_point(pane, scene_pos)
        self.value.setText(self.describe(row, c, y, x))

    def describe(self, row: int, c: int, y: float, x: float) -> str:
        """The value under the cursor: class ``c``, row 0 (S_i) or 1 (S_k), model input pixel (y, x)."""
        ex, number = self.ex, self.number
        size = tuple(ex.input.shape[-2:])
        yi, xi = int(round(y)), int(round(x))
        if not (0 <= yi < size[0] and 0 <= xi < size[1]):
            return "outside the image"
        si, sk = L.hidden_maps(ex, number, self.feature)
        maps = si if row == 0 else sk
        if maps is None:
            return ""
        what = self._row_label(row)
        if number == L.INPUT_LAYER:
            return f"class {c} · {what} at pixel ({yi}, {xi}) = {fmt(maps[c, yi, xi])}"
        i, j = L.unit_at(ex, number, y, x)
        unit = f"unit ({i}, {j}) = {fmt(maps[c, i, j])}"
        if self.space == "hidden":
            return f"class {c} · {what} · {unit}"
        rf, jump, offset = L.geometry(ex, number)
        sf = ex.params.get("sigma_factor", L.DEFAULT_SIGMA_FACTOR)
        mapped = L.map_value(maps[c : c + 1], rf, jump, offset, size, yi, xi, sf)[0]
        return f"class {c} · {what} at pixel ({yi}, {xi}) = {fmt(mapped)}   ·   nearest {unit}"

    def _on_click(self, event) -> None:
        if self.maps is None or event.button() != Qt.MouseButton.LeftButton:
            return
        hit = self._pane_at(event.scenePos())
        if hit is None:
            return
        row, c, pane = hit
        if pane.cls is None:
            return
        y, x = self._model_point(pane, event.scenePos())
        self.pick_unit(*L.unit_at(self.ex, self.number, y, x), cls=c, row=row)

    def pick_unit(self, i: int, j: int, cls: int | None = None, row: int = 0) -> None:
        """Outline unit (i, j)'s receptive field on every map and draw its Gaussian prior.

        ``cls`` and ``row`` name the map that was clicked (class, 0 for S_i or 1 for S_k): its value is
        reported. Without ``cls``, the class of the table and the waterfall.
        """
        self.unit = (int(i), int(j))
        self.unit_map = (int(row), self.cls() if cls is None else int(cls))
        self._draw_unit()
        self.unitPicked.emit(self.number, *self.unit)

    def unit_rect(self) -> QRectF | None:
        """The drawn receptive field, in photograph pixels (None when no unit is picked)."""
        if self.unit is None or not self.rf_rects[0].isVisible():
            return None
        return self.rf_rects[0].rect()

    def _clear_unit(self) -> None:
        self.unit = None
        self.unit_map = None
        for item in (*self.rf_rects, *self.priors):
            item.hide()

    def _draw_unit(self) -> None:
        if self.unit is None or self.ex is None or self.number is None:
            self._clear_unit()
            return
        size = tuple(self.ex.input.shape[-2:])
        (y0, x0, h, w), weights, (oy, ox) = L.unit_prior(self.ex, self.number, *self.unit, size)
        a_y, b_y, a_x, b_x = self.result.to_photo
        rect = QRectF(a_x * x0 + b_x + 0.5, a_y * y0 + b_y + 0.5, a_x * w, a_y * h)
        prior_tf = QTransform(
            a_x, 0, 0, a_y, a_x * (ox - 0.5) + b_x + 0.5, a_y * (oy - 0.5) + b_y + 0.5
        )
        peak = float(weights.max()) if weights.size else 1.0
        for item in self.rf_rects:
            item.setRect(rect)
            item.show()
        for item in self.priors:
            if weights.size:
                item.setImage(weights.astype(np.float32), levels=(0, peak), autoLevels=False)
                item.setTransform(prior_tf)
                item.show()
        i, j = self.unit
        rf, _jump, _ = L.geometry(self.ex, self.number)
        si, sk = L.hidden_maps(self.ex, self.number, self.feature)
        row, c = self.unit_map or (0, self.cls())
        maps = sk if row == 1 and sk is not None else si
        name = self._row_label(1 if maps is sk else 0)
        value = fmt(maps[c, i, j]) if maps is not None else "—"
        self.value.setText(
            f"class {c} · {name} of unit ({i}, {j}) of layer {self.number} = {value} · receptive field "
            f"{rf} × {rf} px, Gaussian prior σ = {self.ex.params.get('sigma_factor', 0.25) * rf:.3g} px"
        )

    # --- walk-through ------------------------------------------------------------------------------
    @Slot(bool)
    def play(self, on: bool) -> None:
        """Walk from the output layer down to the input, one layer every `WALK_MS` ms."""
        if self.play_button.isChecked() != on:
            self.play_button.setChecked(on)
            return
        if on and self.ex is not None and self.rows:
            order = L.walk_order(self.ex)
            # A new walk starts at the output layer; a paused one goes on where it stopped.
            if not self._walking or self.number == order[-1]:
                self.set_layer(order[0])
            self._walking = True
            self.walk_timer.start()
        else:
            self.walk_timer.stop()
        self.play_button.setText("❚❚ Pause" if on else "▶ Walk")

    def toggle_play(self) -> None:
        self.play(not self.play_button.isChecked())

    @Slot()
    def _walk_step(self) -> None:
        if self.ex is None or not self.rows:
            self.play(False)
            return
        if not self.ready():
            return  # the layer on screen is still being mapped: let the viewer see it first
        order = L.walk_order(self.ex)
        k = order.index(self.number)
        if k + 1 < len(order):
            self.set_layer(order[k + 1])
        elif self.autoplay.isChecked():
            self.set_layer(order[0])
        else:
            self._walking = False
            self.play(False)

    # --- exports -----------------------------------------------------------------------------------
    def look(self) -> Look:
        st = self.state
        return Look(st.threshold, st.mode, st.colormap, st.opacity)

    def _maps_of(self, ex, result_key):
        """A function number -> input-space LayerMaps for the export job (cache first)."""
        cache = self.mapper.cache
        done = int(np.isfinite(np.asarray(ex.logits)).sum()) + int(
            np.isfinite(ex.input[:, 0, 0]).sum()
        )

        def maps_of(number: int) -> L.LayerMaps:
            key = (result_key, done, number, "input", None)
            maps = cache.get(key)
            if maps is None:
                maps = L.map_layer(ex, number, "input")
                cache.put(key, maps)
            return maps

        return maps_of

    def _export(self, path: str | Path, write) -> bool:
        if self.ex is None or not self.rows:
            self.exportDone.emit(Path(path), "nothing to export: no explained image with layers")
            return False
        ex, photo, look = self.ex, self.result.photo, self.look()
        maps_of = self._maps_of(ex, self.result.key)
        path = Path(path)
        self.mapper.submit(("export", path), lambda: write(path, ex, photo, maps_of, look))
        return True

    def export_gif(self, path: str | Path) -> bool:
        """Write the walk-through GIF in the mapping thread; `exportDone` tells when."""
        return self._export(path, save_walkthrough_gif)

    def export_sheet(self, path: str | Path) -> bool:
        """Write the layer sheet PNG in the mapping thread; `exportDone` tells when."""
        return self._export(path, save_layer_sheet)

    def export_csv(self, path: str | Path) -> bool:
        """Write the per-layer sums CSV; `exportDone` tells when."""
        return self._export(path, lambda p, ex, *_: save_layer_csv(p, ex))

    @Slot(object, object, object)
    def _on_job_done(self, tag, _value, error) -> None:
        if isinstance(tag, tuple) and tag and tag[0] == "export":
            self.exportDone.emit(tag[1], error)

    def _choose(self, title: str, suffix: str, filt: str) -> Path | None:
        stem = "retinaview"
        if self.result is not None and self.result.request.path is not None:
            stem = self.result.request.path.stem
        start = str(Path.home() / f"{stem}_{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, title, start, filt)
        return Path(path) if path else None

    @Slot()
    def choose_gif(self) -> None:
        path = self._choose("Export the walk-through", "walkthrough.gif", "GIF animation (*.gif)")
        if path:
            self.export_gif(path)

    @Slot()
    def choose_sheet(self) -> None:
        path = self._choose("Export the layer sheet", "layers.png", "PNG image (*.png)")
        if path:
            self.export_sheet(path)

    @Slot()
    def choose_csv(self) -> None:
        path = self._choose("Export the per-layer sums", "layers.csv", "CSV table (*.csv)")
        if path:
            self.export_csv(path)

    # --- state for tests, screenshots and the main window -----------------------------------------
    def ready(self) -> bool:
        """True when the selected layer's maps for the current result are drawn."""
        return (
            self.ex is not None
            and self.asked_number is None
            and self._wanted_key is not None
            and self._shown_key == self._wanted_key
        )

    def shown_sums(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(C,) sums of the S_i and S_k maps drawn now."""
        return self.maps.si_sum, self.maps.sk_sum

    def shutdown(self) -> None:
        """Stop the walk-through and the mapping thread (the main window calls this when closing)."""
        self.walk_timer.stop()
        self.mapper.close()
