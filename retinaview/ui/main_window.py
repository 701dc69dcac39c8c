"""The main window: image browser on the left, the overlay in the middle, prediction and controls on the right.

It only wires widgets to the engine: every number it shows comes from an `ExplainResult` computed in the
engine's worker thread. Threshold, mode, colours and opacity are redrawn from the prepared result without
asking the engine for anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from retinaview.core.common.errors import RetinaviewError
from retinaview.engine.requests import ExplainResult, ModelInfo
from retinaview.ui import shortcuts
from retinaview.ui.browser import BrowserWidget
from retinaview.ui.colormaps import COLORMAPS, MODES
from retinaview.ui.controls import ControlPanel
from retinaview.ui.histogram import MapHistogram
from retinaview.ui.labels import read_labels
from retinaview.ui.overlay_view import OverlayView
from retinaview.ui.prediction_panel import PredictionPanel
from retinaview.ui.settings import app_settings, read_choice, read_float
from retinaview.ui.view_state import KIND_LABELS, THRESHOLD_MAX, ViewState

NOTICE_MS = 8000
DEFAULT_SIZE = (1440, 880)
# Wide enough for names like "synthetic_grade4_2.jpg" beside the thumbnail and the three short columns.
BROWSER_WIDTH = 420


class MainWindow(QMainWindow):
    """``engine``: a started or not-yet-started `retinaview.engine.worker.Engine`; the window owns it and
    closes it on close. ``method`` / ``params``: the explanation asked for every image."""

    # resultShown: the final result of the current image; partialShown: the classes computed so far.
    resultShown = Signal(object)
    partialShown = Signal(object)
    noticeShown = Signal(str)

    def __init__(
        self,
        engine,
        method: str = "rfscore",
        params: dict | None = None,
        restore: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.method = method
        self.params = dict(params or {})
        self.folder: Path | None = None
        self.current: Path | None = None
        self.notices: list[str] = []
        self._inspector = None
        self.persist = restore
        self.setWindowTitle("retinaview")
        self.setAcceptDrops(True)
        self.setMinimumSize(960, 600)

        self.browser = BrowserWidget()
        self.browser.setObjectName("panel")
        self.browser.setMinimumWidth(300)
        self.viewer = OverlayView()
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self.notice_timer = QTimer(self, singleShot=True, interval=NOTICE_MS)
        self.notice_timer.timeout.connect(self.notice.hide)
        self.centre_stack = QStackedWidget()
        self.centre_stack.addWidget(self.viewer)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.setSpacing(0)
        centre_layout.addWidget(self.notice)
        centre_layout.addWidget(self.centre_stack, 1)

        self.prediction = PredictionPanel()
        self.controls = ControlPanel(self._restored_state() if restore else ViewState())
        self.histogram = MapHistogram()
        side = QWidget()
        side.setObjectName("panel")
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 4, 10, 8)
        side_layout.setSpacing(6)
        for title, widget in (
            ("Prediction", self.prediction),
            ("Explanation map", self.controls),
            ("Distribution of the map", self.histogram),
        ):
            box = QGroupBox(title)
            lay = QVBoxLayout(box)
            lay.setContentsMargins(8, 6, 8, 8)
            lay.addWidget(widget)
            side_layout.addWidget(box)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(370)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.browser)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([BROWSER_WIDTH, DEFAULT_SIZE[0] - BROWSER_WIDTH - 380, 380])
        self.setCentralWidget(self.splitter)

        self._build_status_bar()
        self.actions: dict[str, QAction] = {}
        self._build_menus()

        self.controls.changed.connect(self._on_state)
        self.browser.currentChanged.connect(self._on_current)
        engine.resultReady.connect(self._on_result)
        engine.photoReady.connect(self._on_photo)
        engine.failed.connect(self._on_failed)
        engine.modelLoaded.connect(self._on_model_loaded)
        engine.modelFailed.connect(self._on_model_failed)
        engine.scored.connect(self._on_scored)
        engine.scoreFailed.connect(self._on_score_failed)
        engine.scoringProgress.connect(self._on_progress)
        engine.scoringFinished.connect(self._on_scoring_finished)
        self.viewer.set_state(self.controls.state)
        self._update_histogram_cut()
        self.resize(*DEFAULT_SIZE)
        self._sized = False
        if restore:
            self._restore_geometry()

    # --- construction ------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("grading %v / %m")
        self.progress.hide()
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop grading the folder (Esc)")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.engine.cancel_scoring)
        self.model_label = QLabel("loading model…")
        self.device_label = QLabel("")
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.device_label)

    def _action(self, name: str, text: str, slot, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        keys = shortcuts.keys_for(name)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)
        self.actions[name] = action
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self._action("open_folder", "Open &Folder…", self.choose_folder))
        file.addAction(self._action("open_image", "Open &Image…", self.choose_image))
        file.addAction(self._action("open_model", "Open &Model…", self.choose_model))
        file.addSeparator()
        file.addAction(self._action("export_png", "Export View as &PNG…", self.export_png))
        file.addAction(self._action("export_gif", "Export Animated &GIF…", self.export_gif))
        file.addAction(self._action("export_map", "Export &Map (.npy / .csv)…", self.export_map))
        file.addSeparator()
        file.addAction(self._action("quit", "&Quit", self.close))

        view = bar.addMenu("&View")
        c = self.controls
        for name, text, slot in (
            ("toggle_overlay", "&Overlay", lambda: c.change(overlay=not c.state.overlay)),
            ("toggle_green", "&Green Channel", lambda: c.change(green=not c.state.green)),
            ("toggle_grid", "&All Classes Grid", lambda: c.change(grid=not c.state.grid)),
            ("toggle_colormap", "&Colour-Blind-Safe Colours", self._toggle_colormap),
        ):
            view.addAction(self._action(name, text, slot))
        view.addSeparator()
        view.addAction(
            self._action("predicted_class", "&Predicted Class", lambda: c.change(cls=None))
        )
        for k in range(5):
            action = self._action(f"class_{k}", f"Class {k}", lambda _=False, k=k: c.change(cls=k))
            view.addAction(action)
        view.addSeparator()
        view.addAction(self._action("threshold_up", "Threshold +0.1 σ", lambda: self._nudge(0.1)))
        view.addAction(
            self._action("threshold_down", "Threshold −0.1 σ", lambda: self._nudge(-0.1))
        )
        view.addAction(self._action("cycle_mode", "Next &Mode", self._cycle_mode))
        view.addAction(self._action("cycle_kind", "Next Map &Kind", self._cycle_kind))
        view.addAction(self._action("reset_zoom", "&Fit Photograph", self.viewer.reset_zoom))
        view.addSeparator()
        self.inspector_action = QAction("Layer &Inspector", self, checkable=True)
        self.inspector_action.setShortcuts(
            [QKeySequence(k) for k in shortcuts.keys_for("toggle_inspector")]
        )
        self.inspector_action.toggled.connect(self.show_inspector)
        self.addAction(self.inspector_action)
        self.actions["toggle_inspector"] = self.inspector_action
        view.addAction(self.inspector_action)
        layers = view.addMenu("La&yers")
        for name, text, method in (
            ("layer_up", "Layer &Above", "step_up"),
            ("layer_down", "Layer &Below", "step_down"),
            ("walk_play", "&Walk Through the Layers", "toggle_play"),
            ("toggle_space", "&Hidden / Input Space", "toggle_space"),
        ):
            layers.addAction(
                self._action(name, text, lambda _=False, m=method: self._inspector_call(m))
            )

        browse = bar.addMenu("&Browse")
        b = self.browser
        browse.addAction(self._action("next_image", "&Next Image", lambda: b.move(1)))
        browse.addAction(self._action("prev_image", "&Previous Image", lambda: b.move(-1)))
        browse.addAction(self._action("first_image", "&First Image", lambda: b.move(float("-inf"))))
        browse.addAction(self._action("last_image", "&Last Image", lambda: b.move(float("inf"))))
        browse.addSeparator()
        browse.addAction(self._action("score_folder", "&Grade Whole Folder", self.score_folder))
        browse.addAction(
            self._action("cancel_scoring", "&Stop Grading", self.engine.cancel_scoring)
        )

        tools = bar.addMenu("&Tools")
        tools.addAction(self._action("train_model", "&Train Model…", self.open_training))

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(
            self._action("show_shortcuts", "&Keyboard Shortcuts", self.show_shortcuts)
        )
        about = QAction("&About retinaview", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    # --- settings ----------------------------------------------------------------------------------
    def _restored_state(self) -> ViewState:
        s = app_settings()
        return ViewState(
            threshold=read_float(s, "view/threshold", 2.0, 0.0, THRESHOLD_MAX),
            colormap=read_choice(s, "view/colormap", "green_red", COLORMAPS),
            mode=read_choice(s, "view/mode", "positive", MODES),
            kind=read_choice(s, "view/kind", "total", KIND_LABELS),
            opacity=read_float(s, "view/opacity", 0.8, 0.0, 1.0),
        )

    def _restore_geometry(self) -> None:
        s = app_settings()
        geometry, state = s.value("window/geometry"), s.value("window/splitter")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self._sized = self.splitter.restoreState(state)

    def save_settings(self) -> None:
        s = app_settings()
        st = self.controls.state
        s.setValue("view/threshold", st.threshold)
        s.setValue("view/colormap", st.colormap)
        s.setValue("view/mode", st.mode)
        s.setValue("view/kind", st.kind)
        s.setValue("view/opacity", st.opacity)
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/splitter", self.splitter.saveState())
        if self.folder is not None:
            s.setValue("files/last_folder", str(self.folder))
        s.sync()

    def last_folder(self) -> str:
        value = app_settings().value("files/last_folder", "")
        return value if isinstance(value, str) and Path(value).is_dir() else str(Path.home())

    # --- opening -----------------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        """Open a folder (its images) or an image (its folder, with it selected). False on a notice."""
        path = Path(path).expanduser()
        if path.is_dir():
            return self.open_folder(path)
        if path.is_file():
            if not self.open_folder(path.parent, select=path):
                return False
            if self.browser.current_path() != path:
                self.show_notice(f"{path}: not an image file retinaview reads")
                return False
            return True
        self.show_notice(f"{path}: no such file or folder")
        return False

    def open_folder(self, folder: Path, select: Path | None = None) -> bool:
        from retinaview.core.common.io import list_images

        try:
            paths = list_images(folder)
        except RetinaviewError as exc:
            self.show_notice(str(exc))
            return False
        try:
            truth = read_labels(folder)
        except RetinaviewError as exc:
            truth = {}
            self.show_notice(f"{exc} (ground truth not shown)")
        self.folder = folder
        self.browser.set_folder(folder, paths, truth)
        self.setWindowTitle(f"{folder.name} — retinaview")
        if not paths:
            self.viewer.clear()
            self.prediction.clear()
            self.show_notice(f"{folder}: no images (jpg, jpeg, png, tif, bmp) in this folder")
            return True
        if select is None or not self.browser.select_path(select):
            self.browser.move(float("-inf"))
        self.score_folder()
        return True

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder of images", self.last_folder()
        )
        if folder:
            self.open_path(folder)

    @Slot()
    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open an image",
            self.last_folder(),
            "Images (*.jpg *.jpeg *.png *.tif *.tiff *.bmp);;All files (*)",
        )
        if path:
            self.open_path(path)

    @Slot()
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a model", self.last_folder(), "Models (*.pt *.pth *.ckpt);;All files (*)"
        )
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        self.model_label.setText(f"loading {Path(path).name}…")
        self.engine.load_model(path)

    @Slot()
    def score_folder(self) -> None:
        paths = [e.path for e in self.browser.model.entries()]
        if paths:
            self.engine.score(paths)

    # --- engine answers ----------------------------------------------------------------------------
    @Slot(object)
    def _on_current(self, path: Path) -> None:
        self.current = path
        self.prediction.set_pending(path.name)
        self.viewer.main_pane.title.setText(f"{path.name} · computing…")
        self.engine.request(path, self.method, self.params, keep_layers=self._inspector_shown())

    @Slot(object)
    def _on_photo(self, photo: np.ndarray) -> None:
        name = self.current.name if self.current else ""
        self.viewer.set_photo(photo, f"{name} · computing the explanation…")

    @Slot(object)
    def _on_result(self, result: ExplainResult) -> None:
        """A final result, or a partial one (the predicted class first) that the final one replaces."""
        entry = self.browser.model.entry(result.request.path) if result.request.path else None
        self.viewer.set_result(result)
        self.prediction.set_result(result, entry.truth if entry else None)
        self._update_histogram()
        if result.partial:
            self.partialShown.emit(result)
            return
        if self._inspector is not None and result.explanation.layers:
            self._inspector.set_result(result)
        self.resultShown.emit(result)

    @Slot(str, object)
    def _on_failed(self, message: str, path) -> None:
        if path is not None:
            self.browser.model.set_error(path, message)
        self.viewer.clear()
        self.viewer.empty.setText(f"⚠  {message}")
        self.prediction.clear("Could not explain this image")
        self.histogram.set_counts(None, 0)
        self.show_notice(message)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_label.setText(f"model: {info.source}")
        self.model_label.setToolTip(f"{info.arch}, input {info.input_size} px, {info.model_id}")
        self.device_label.setText(info.device)
        self.controls.set_class_names(info.class_names)
        self.browser.set_class_names(info.class_names)
        if self.current is not None:
            self._on_current(self.current)
            self.score_folder()

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        info = self.engine.model_info
        self.model_label.setText(f"model: {info.source}" if info else "no model")
        self.show_notice(f"Model not opened: {message}")

    @Slot(object, object)
    def _on_scored(self, path, probs) -> None:
        self.browser.model.set_probs(path, probs)

    @Slot(object, str)
    def _on_score_failed(self, path, message: str) -> None:
        self.browser.model.set_error(path, message)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        running = done < total
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.browser.refresh_count()

    @Slot(object)
    def _on_scoring_finished(self, completed: bool) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.browser.refresh_count()
        errors = sum(e.error is not None for e in self.browser.model.entries())
        if not completed:
            self.statusBar().showMessage("Grading stopped", 4000)
        elif errors:
            self.statusBar().showMessage(f"Folder graded · {errors} unreadable", 6000)
        else:
            self.statusBar().showMessage("Folder graded", 4000)

    # --- view state --------------------------------------------------------------------------------
    @Slot(object)
    def _on_state(self, state: ViewState) -> None:
        old = self.viewer.state
        self.viewer.set_state(state)
        if self._inspector is not None:
            self._inspector.set_state(state)
        if (state.cls, state.kind, state.grid) != (old.cls, old.kind, old.grid):
            self._update_histogram()
        self._update_histogram_cut()

    def _update_histogram(self) -> None:
        result = self.viewer.result
        if result is None:
            self.histogram.set_counts(None, 0)
            return
        self.histogram.set_counts(result.maps[self.viewer.current_kind()], self._histogram_class())

    def _histogram_class(self) -> int:
        result = self.viewer.result
        c = self.controls.state.cls
        return result.grade if c is None else c

    def _update_histogram_cut(self) -> None:
        st = self.controls.state
        self.histogram.set_cut(st.threshold, st.mode, COLORMAPS[st.colormap])

    def _nudge(self, step: float) -> None:
        st = self.controls.state
        self.controls.change(threshold=round(min(max(st.threshold + step, 0.0), THRESHOLD_MAX), 1))

    def _cycle_mode(self) -> None:
        st = self.controls.state
        self.controls.change(mode=MODES[(MODES.index(st.mode) + 1) % len(MODES)])

    def _cycle_kind(self) -> None:
        kinds = list(KIND_LABELS)
        st = self.controls.state
        self.controls.change(kind=kinds[(kinds.index(st.kind) + 1) % len(kinds)])

    def _toggle_colormap(self) -> None:
        st = self.controls.state
        names = list(COLORMAPS)
        self.controls.change(colormap=names[(names.index(st.colormap) + 1) % len(names)])

    # --- notices and help --------------------------------------------------------------------------
    def show_notice(self, message: str) -> None:
        """A one-line message above the image that fades after a few seconds (never a modal box)."""
        self.notices.append(message)
        self.notice.setText(f"⚠  {message}")
        self.notice.show()
        self.notice_timer.start()
        self.statusBar().showMessage(message, NOTICE_MS)
        self.noticeShown.emit(message)

    @Slot()
    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        text = QTextBrowser()
        text.setHtml(shortcuts.as_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.resize(520, 640)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    @Slot()
    def show_about(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            __version__ = version("retinaview")
        except PackageNotFoundError:
            __version__ = "(not installed)"
        info = self.engine.model_info
        self.show_notice(
            f"retinaview {__version__} · {info.source if info else 'no model'} · "
            f"{info.device if info else ''}"
        )

    # --- parts imported when first used (they are not needed to show the window) -----------------------
    @Slot()
    def open_training(self) -> None:
        from retinaview.ui.train_dialog import TrainDialog

        dialog = TrainDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.modelReady.connect(self.open_model)
        dialog.show()

    def _inspector_call(self, method: str) -> None:
        if self._inspector_shown():
            getattr(self._inspector, method)()

    def inspector_ready(self) -> bool:
        """False while the inspector is shown and its layer is not drawn yet (screenshots wait for it)."""
        if not self._inspector_shown() or self.current is None or self.notices:
            return True
        return self._inspector.ready()

    def _inspector_shown(self) -> bool:
        return self._inspector is not None and self.centre_stack.currentWidget() is self._inspector

    @Slot(bool)
    def show_inspector(self, on: bool) -> None:
        if on and self._inspector is None:
            from retinaview.ui.layer_inspector import LayerInspector

            self._inspector = LayerInspector()
            self._inspector.set_state(self.controls.state)
            self.centre_stack.addWidget(self._inspector)
        if self._inspector is None:
            return
        # Zoom and pan carry over between the overlay and the inspector (same photograph coordinates).
        if on and self._inspector.result is not None:
            self._inspector.set_view_rect(self.viewer.panes()[0].box.viewRect())
        elif not on and self._inspector.result is not None and self.viewer.result is not None:
            self.viewer.panes()[0].box.setRange(self._inspector.view_rect(), padding=0)
        self.centre_stack.setCurrentWidget(self._inspector if on else self.viewer)
        if on and self.current is not None:
            self._on_current(self.current)

    def set_inspector_layer(self, layer: int) -> None:
        if self._inspector is not None:
            self._inspector.set_layer(layer)

    def _export_target(self, title: str, suffixes: str) -> Path | None:
        result = self.viewer.result
        if result is None:
            self.show_notice("Nothing to export yet: open an image first")
            return None
        c = self.viewer.shown_classes()[0]
        if not result.is_done(c):
            self.show_notice(f"Class {c} is still being computed: export it when it is shown")
            return None
        stem = result.request.path.stem if result.request.path else "retinaview"
        start = Path(self.last_folder()) / f"{stem}_class{c}_{self.viewer.current_kind()}"
        path, _ = QFileDialog.getSaveFileName(self, title, str(start), suffixes)
        return Path(path) if path else None

    def current_map(self, photo_space: bool = True) -> np.ndarray:
        """The float map shown now (first shown class), on the photograph's pixels when possible."""
        result = self.viewer.result
        ex = result.explanation
        c = self.viewer.shown_classes()[0]
        kind = self.viewer.current_kind()
        m = {"input": ex.input, "total": ex.total}.get(kind)
        m2 = ex.total[c] - ex.input[c] if m is None else m[c]
        if photo_space and ex.geometry is not None and result.photo is not ex.display:
            return np.asarray(ex.geometry.to_photo(m2), dtype=np.float32)
        return m2

    def _photo_mask_rgba(self) -> np.ndarray:
        """The overlay as drawn (colour and alpha), resampled to the photograph by nearest neighbour."""
        result = self.viewer.result
        from retinaview.ui.colormaps import overlay_lut

        c = self.viewer.shown_classes()[0]
        prepared = result.maps[self.viewer.current_kind()]
        st = self.controls.state
        lut = overlay_lut(COLORMAPS[st.colormap], prepared.cut_index(c, st.threshold), st.mode)
        index = prepared.index[c]
        h, w = result.photo.shape[:2]
        a_y, b_y, a_x, b_x = result.to_photo
        rows = np.clip(np.rint((np.arange(h) - b_y) / a_y), -1, index.shape[0]).astype(np.intp)
        cols = np.clip(np.rint((np.arange(w) - b_x) / a_x), -1, index.shape[1]).astype(np.intp)
        inside_r = (rows >= 0) & (rows < index.shape[0])
        inside_c = (cols >= 0) & (cols < index.shape[1])
        sampled = index[
            np.ix_(np.clip(rows, 0, index.shape[0] - 1), np.clip(cols, 0, index.shape[1] - 1))
        ]
        rgba = lut[sampled]
        rgba[~(inside_r[:, None] & inside_c[None, :])] = 0
        return rgba

    @Slot()
    def export_png(self) -> None:
        from retinaview.ui.export import save_view_png

        path = self._export_target("Export the view as PNG", "PNG image (*.png)")
        if path is None:
            return
        st = self.controls.state
        self._run_export(
            path,
            lambda: save_view_png(
                path,
                self.viewer.result.photo,
                self.current_map(),
                threshold=st.threshold,
                mode=st.mode,
                colormap=st.colormap,
                opacity=st.opacity,
            ),
        )

    @Slot()
    def export_gif(self) -> None:
        from retinaview.ui.export import save_blend_gif

        path = self._export_target("Export an animated GIF", "GIF animation (*.gif)")
        if path is None:
            return
        self._run_export(
            path, lambda: save_blend_gif(path, self.viewer.result.photo, self._photo_mask_rgba())
        )

    @Slot()
    def export_map(self) -> None:
        from retinaview.ui.export import save_map

        path = self._export_target("Export the map", "NumPy array (*.npy);;CSV table (*.csv)")
        if path is None:
            return
        self._run_export(path, lambda: save_map(path, self.current_map()))

    def _run_export(self, path: Path, write) -> None:
        try:
            write()
        except (RetinaviewError, OSError, ValueError) as exc:
            self.show_notice(f"{path}: not written ({exc})")
            return
        self.statusBar().showMessage(f"Saved {path}", 5000)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._sized:
            # Sizes given before the first show are scaled to a guessed width; give them once the window
            # has its real one.
            self._sized = True
            QTimer.singleShot(0, self._initial_sizes)

    def _initial_sizes(self) -> None:
        width = self.splitter.width()
        self.splitter.setSizes([BROWSER_WIDTH, max(width - BROWSER_WIDTH - 380, 200), 380])

    # --- drag and drop, closing --------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0].toLocalFile())
            event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        if self.persist:
            self.save_settings()
        self.engine.close()
        if self._inspector is not None:
            self._inspector.shutdown()
        self.browser.thumbnails.shutdown()
        super().closeEvent(event)
