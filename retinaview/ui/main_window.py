"""The main window: image browser on the left, the overlay in the middle, prediction and controls on the right.

It only wires widgets to the engine: every number it shows comes from an `ExplainResult` computed in the
engine's worker thread. Threshold, mode, colours and opacity are redrawn from the prepared result without
asking the engine for anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QGroupBox,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from retinaview.core.common.errors import RetinaviewError
from retinaview.engine.requests import METHOD_NAMES, ExplainResult, ModelInfo, bundled_models
from retinaview.ui import shortcuts
from retinaview.ui.agreement_panel import AgreementPanel
from retinaview.ui.browser import BrowserWidget
from retinaview.ui.colormaps import COLORMAPS, DEFAULT_COLORMAP, MODES
from retinaview.ui.controls import ControlPanel
from retinaview.ui.grading_panel import GradingPanel
from retinaview.ui.histogram import MapHistogram
from retinaview.ui.labels import read_labels
from retinaview.ui.map_legend import method_label
from retinaview.ui.overlay_view import EMPTY_TEXT, OverlayView, float_maps
from retinaview.ui.prediction_panel import PredictionPanel
from retinaview.ui.settings import app_settings, read_bool, read_choice, read_float
from retinaview.ui.thumbnails import PhotoLoader
from retinaview.ui.view_state import (
    DEFAULT_OPACITY,
    DEFAULT_THRESHOLD,
    KIND_LABELS,
    THRESHOLD_MAX,
    ViewState,
    kind_label,
)

NOTICE_MS = 8000
RECENT_RESULTS = 4
DEFAULT_SIZE = (1440, 880)
# Wide enough for names like "synthetic_grade4_2.jpg" beside the thumbnail and the three short columns.
BROWSER_WIDTH = 420
SIDE_WIDTH = 380
VIEW_KEYS = ("threshold", "colormap", "mode", "kind", "opacity", "smooth")
# Export sizes offered: the width of one map in pixels (None: the photograph's own resolution).
EXPORT_WIDTHS = {"Photograph resolution": None, "2048 px": 2048, "1024 px": 1024, "640 px": 640}


# Qt's own file dialog: the same on every desktop, and its toolbar icons come from the style, so they are
# drawn even where no icon theme is installed (the platform's dialog showed blank buttons there).
FILE_DIALOG_OPTIONS = QFileDialog.Option.DontUseNativeDialog


def ask_training_quit(parent: QWidget) -> bool:
    """Ask whether to stop a running training to quit: True to stop it (it saves first), False to keep
    training (and not quit)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("A model is training")
    box.setText("A model is training. Quitting stops it.")
    box.setInformativeText(
        "Stop and save: the run stops after the current step and saves last.pt, which Tools ▸ Train "
        "Model can continue. Keep training: retinaview stays open."
    )
    stop = box.addButton("Stop and save, then quit", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Keep training", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.exec()
    return box.clickedButton() is stop


def ask_export_width(parent: QWidget) -> tuple[bool, int | None]:
    """(chosen, width of one map in pixels or None for the photograph's resolution)."""
    names = list(EXPORT_WIDTHS)
    name, ok = QInputDialog.getItem(
        parent, "Export the view", "Size of each map in the PNG:", names, 0, False
    )
    return ok, EXPORT_WIDTHS.get(name)


class MainWindow(QMainWindow):
    """``engine``: a started or not-yet-started `retinaview.engine.worker.Engine`; the window owns it and
    closes it on close. ``method`` / ``params``: the explanation asked for every image."""

    # resultShown: the final result of the current image; partialShown: the classes computed so far.
    resultShown = Signal(object)
    partialShown = Signal(object)
    noticeShown = Signal(str)
    # resultHeld: the final result of the current image in review mode, kept off screen until the reviewer's
    # grade of the image is saved (then it is drawn and resultShown follows).
    resultHeld = Signal(object)

    def __init__(
        self,
        engine,
        method: str = "rfscore",
        params: dict | None = None,
        restore: bool = True,
        review: bool | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.method = method
        if restore and method == "rfscore":
            # The method of the last session, unless another was asked for.
            self.method = read_choice(app_settings(), "view/method", method, METHOD_NAMES)
        self.params = dict(params or {})
        self.folder: Path | None = None
        self.current: Path | None = None
        self.notices: list[str] = []
        self._inspector = None
        self._sizes_before_inspector: list[int] | None = None
        self.train_dialog = None
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
        self.photos = PhotoLoader(self)
        self.photos.loaded.connect(self._on_photo_loaded)
        self.photos.failed.connect(self._on_photo_failed)
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
        self.grading = GradingPanel()
        side = QWidget()
        side.setObjectName("panel")
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 4, 10, 8)
        side_layout.setSpacing(6)
        self.boxes: dict[str, QGroupBox] = {}
        for title, widget in (
            ("Review", self.grading),
            ("Prediction", self.prediction),
            ("Explanation map", self.controls),
            ("Distribution of the map", self.histogram),
        ):
            box = QGroupBox(title)
            lay = QVBoxLayout(box)
            lay.setContentsMargins(8, 6, 8, 8)
            lay.addWidget(widget)
            side_layout.addWidget(box)
            self.boxes[title] = box
        self.boxes["Review"].hide()
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(370)
        self.side = scroll

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.browser)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes(self._default_sizes(DEFAULT_SIZE[0]))
        self.setCentralWidget(self.splitter)

        # Review mode: the reviewer's own grade of each image (and, with "hide the model", nothing of the
        # model's opinion of an image until that grade is saved); the agreement of the project in a dock.
        self.review = bool(
            read_bool(app_settings(), "review/on", False) if review is None and restore else review
        )
        self._held: ExplainResult | None = None
        # The last few final results by image, for a patient's report and view (both eyes).
        self._recent: dict[Path, ExplainResult] = {}
        self.patient_view = None
        self._reverting = False
        self.agreement = AgreementPanel()
        self.agreement_dock = QDockWidget("Review agreement", self)
        self.agreement_dock.setObjectName("agreementDock")
        self.agreement_dock.setWidget(self.agreement)
        self.agreement_dock.hide()
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.agreement_dock)

        self._build_status_bar()
        self.actions: dict[str, QAction] = {}
        self._build_menus()

        self.controls.changed.connect(self._on_state)
        self.controls.set_methods(METHOD_NAMES, self.method)
        self.controls.methodChanged.connect(self.set_method)
        self.grading.advanceRequested.connect(self._review_next)
        self.grading.undone.connect(self._review_undone)
        self.grading.aiVisibilityChanged.connect(self._set_ai_visible)
        self.grading.noticeShown.connect(self.show_notice)
        self.grading.committed.connect(self._on_review_committed)
        self.agreement.filterRequested.connect(self.browser.set_review_filter)
        self.agreement.noticeShown.connect(self.show_notice)
        self.agreement_dock.visibilityChanged.connect(self._on_agreement_shown)
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
        self.browser.model.countsChanged.connect(self._update_progress_text)
        self.viewer.set_state(self.controls.state)
        self._sync_actions(self.controls.state)
        self._sync_review_actions()
        self._update_histogram_cut()
        self.resize(*DEFAULT_SIZE)
        self._sized = False
        if restore:
            self._restore_geometry()
            self._restore_panels()

    # --- construction ------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMinimumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop grading the folder (Esc)")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.engine.cancel_scoring)
        self.grading_label = QLabel("")
        self._grading: str | None = None
        bar.addWidget(self.grading_label)
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
        file.addAction(
            self._action(
                "toggle_review", "&Review Mode (Grade Each Image)", self.set_review_mode, True
            )
        )
        file.addAction(
            self._action(
                "show_agreement",
                "Review &Agreement",
                lambda on: self.agreement_dock.setVisible(on),
                True,
            )
        )
        file.addSeparator()
        file.addAction(self._action("export_png", "Export View as &PNG…", self.export_png))
        file.addAction(
            self._action("export_map_png", "Export Map Alone as P&NG…", self.export_map_png)
        )
        file.addAction(self._action("export_gif", "Export Animated &GIF…", self.export_gif))
        file.addAction(self._action("export_map", "Export &Map (.npy / .csv)…", self.export_map))
        file.addAction(
            self._action("export_report", "Export &Report (PDF)…", lambda: self.export_report())
        )
        file.addAction(
            self._action(
                "export_patient_report",
                "Export &Patient Report (PDF)…",
                lambda: self.export_report(patient=True),
            )
        )
        file.addSeparator()
        file.addAction(self._action("quit", "&Quit", self.close))

        view = bar.addMenu("&View")
        c = self.controls
        for name, text, slot in (
            ("toggle_overlay", "&Overlay", lambda: c.change(overlay=not c.state.overlay)),
            ("toggle_green", "&Green Channel", lambda: c.change(green=not c.state.green)),
            ("toggle_grid", "&All Classes Grid", lambda: c.change(grid=not c.state.grid)),
            ("toggle_smooth", "&Smoothed Map", lambda: c.change(smooth=not c.state.smooth)),
            ("toggle_colormap", "&Colour-Blind-Safe Colours", self._toggle_colormap),
        ):
            view.addAction(self._action(name, text, slot, checkable=True))
        view.addSeparator()
        self.class_group = QActionGroup(self)
        self.class_group.setExclusive(True)
        for k in (None, *range(5)):
            name = "predicted_class" if k is None else f"class_{k}"
            action = self._action(name, "", lambda _=False, k=k: c.change(cls=k), checkable=True)
            self.class_group.addAction(action)
            view.addAction(action)
        self._name_class_actions(self.controls.class_names())
        view.addSeparator()
        view.addAction(self._action("threshold_up", "Threshold +0.1 σ", lambda: self._nudge(0.1)))
        view.addAction(
            self._action("threshold_down", "Threshold −0.1 σ", lambda: self._nudge(-0.1))
        )
        view.addAction(self._action("cycle_mode", "Next &Mode", self._cycle_mode))
        view.addAction(self._action("cycle_kind", "Next Map &Kind", self._cycle_kind))
        view.addAction(self._action("reset_zoom", "&Fit Photograph", self.viewer.reset_zoom))
        view.addAction(self._action("reset_view", "&Reset View Settings", self.reset_view_settings))
        view.addAction(self._action("show_patient", "&Patient View (Both Eyes)", self.show_patient))
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
        from retinaview.ui.vessels_panel import VesselsMenu

        self.vessels = VesselsMenu(self.engine, self.viewer, self)
        self.browser.currentChanged.connect(self.vessels.set_image)
        view.addAction(self._action("vessels_panel", "&Vessels…", self.vessels.show_panel))
        underlay = self._action(
            "vessel_underlay", "Vessels &Under the Maps", self.vessels.set_underlay, True
        )
        view.addAction(underlay)

        models = bar.addMenu("&Model")
        self.model_group = QActionGroup(self)
        self.model_group.setExclusive(True)
        for path in bundled_models():
            action = QAction(path.stem, self, checkable=True)
            action.setData(str(path))
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=str(path): self.open_model(p))
            self.model_group.addAction(action)
            models.addAction(action)
        models.addSeparator()
        models.addAction(self.actions["open_model"])

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
            threshold=read_float(s, "view/threshold", DEFAULT_THRESHOLD, 0.0, THRESHOLD_MAX),
            colormap=read_choice(s, "view/colormap", DEFAULT_COLORMAP, COLORMAPS),
            mode=read_choice(s, "view/mode", "positive", MODES),
            kind=read_choice(s, "view/kind", "total", KIND_LABELS),
            opacity=read_float(s, "view/opacity", DEFAULT_OPACITY, 0.0, 1.0),
            smooth=read_bool(s, "view/smooth", True),
        )

    @Slot()
    def reset_view_settings(self) -> None:
        """Back to the defaults: threshold, map kind, sign mode, colours, opacity, smoothing, the panels'
        widths; the remembered values are forgotten."""
        st = self.controls.state
        self.controls.set_state(ViewState(cls=st.cls, grid=st.grid))
        s = app_settings()
        for key in VIEW_KEYS:
            s.remove(f"view/{key}")
        s.remove("window/splitter")
        s.sync()
        self.splitter.setSizes(self._default_sizes(self.splitter.width()))
        self.viewer.reset_zoom()
        self.statusBar().showMessage("View settings reset to the defaults", 4000)

    def _restore_geometry(self) -> None:
        s = app_settings()
        geometry, state = s.value("window/geometry"), s.value("window/splitter")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self._sized = self.splitter.restoreState(state)

    def _restore_panels(self) -> None:
        """The panels of the last session: the agreement dock, the layer inspector."""
        s = app_settings()
        if read_bool(s, "window/agreement", False):
            self.agreement_dock.show()
        if read_bool(s, "window/inspector", False):
            QTimer.singleShot(0, lambda: self.inspector_action.setChecked(True))

    def _remembered_image(self, folder: Path) -> Path | None:
        """The image shown when the last session ended, when it lies in ``folder``."""
        if not self.persist:
            return None
        value = app_settings().value("files/last_image", "")
        if not isinstance(value, str) or not value:
            return None
        path = Path(value)
        return path if path.parent == folder.resolve() and path.is_file() else None

    def save_settings(self) -> None:
        s = app_settings()
        st = self.controls.state
        s.setValue("view/method", self.method)
        s.setValue("window/agreement", self.agreement_dock.isVisible())
        s.setValue("window/inspector", self._inspector_shown())
        if self.current is not None:
            s.setValue("files/last_image", str(self.current.resolve()))
        s.setValue("view/threshold", st.threshold)
        s.setValue("view/colormap", st.colormap)
        s.setValue("view/mode", st.mode)
        s.setValue("view/kind", st.kind)
        s.setValue("view/opacity", st.opacity)
        s.setValue("view/smooth", st.smooth)
        s.setValue("review/on", self.review)
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/splitter", self.splitter.saveState())
        if self.folder is not None:
            s.setValue("files/last_folder", str(self.folder.resolve()))
        s.sync()

    def last_folder(self) -> str:
        value = app_settings().value("files/last_folder", "")
        return value if isinstance(value, str) and Path(value).is_dir() else str(Path.home())

    def export_folder(self) -> Path:
        """Where a save dialog opens: the last export's folder, else the image's, else the home folder."""
        value = app_settings().value("files/last_export", "")
        if isinstance(value, str) and value and Path(value).is_dir():
            return Path(value)
        result = self.viewer.result
        if result is not None and result.request.path is not None:
            return result.request.path.resolve().parent
        return Path.home()

    # --- opening -----------------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        """Open a folder (its images) or an image (its folder, with it selected). False on a notice."""
        path = Path(path).expanduser().resolve()
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
        self.current = None
        self._held = None
        self.browser.set_review_filter(None)
        self.browser.set_folder(folder, paths, truth)
        if self.review and paths:
            resume = self._start_review()
            select = select if select is not None else resume
        if select is None:
            select = self._remembered_image(folder)
        self.setWindowTitle(f"{folder.name} — retinaview")
        if not paths:
            self.viewer.show_message(
                f"{folder.name}: no images (jpg, jpeg, png, tif, bmp) in this folder\n\n{EMPTY_TEXT}"
            )
            self.prediction.clear()
            self.histogram.set_counts(None, 0)
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

    @Slot(str)
    def set_method(self, name: str) -> None:
        """Explain with another method: the image stays, and is explained again."""
        if name == self.method:
            return
        self.method = name
        self.controls.set_methods(METHOD_NAMES, name)
        if self.current is not None:
            self.engine.request(
                self.current, self.method, self.params, keep_layers=self._inspector_shown()
            )

    def open_model(self, path: str) -> None:
        self.model_label.setText(f"loading {Path(path).name}…")
        self.engine.load_model(path)

    @Slot()
    def score_folder(self) -> None:
        paths = [e.path for e in self.browser.model.entries()]
        if paths:
            self.engine.score(paths)

    # --- engine answers ----------------------------------------------------------------------------
    def _waiting_text(self) -> str:
        return "computing the map…" if self.engine.model_info is not None else "loading the model…"

    @Slot(object)
    def _on_current(self, path: Path) -> None:
        """A newly selected image: nothing of the previous one stays on screen, nor its notice. The same
        image asked for again (a model loaded, the inspector opened) keeps what it shows until the new
        result comes."""
        if self._reverting:
            return
        if not self._review_allows(path):
            return
        if path != self.current or not self.viewer.has_photo():
            if self.current is not None and path != self.current:
                self.notice.hide()
            self._held = None
            entry = self.browser.model.entry(path)
            self.viewer.show_message(f"Opening {path.name}…")
            self.prediction.set_pending(
                path.name,
                entry.truth if entry else None,
                entry.probs if entry else None,
                self._waiting_text(),
            )
            self.histogram.set_counts(None, 0)
            self.controls.setEnabled(True)
            self.photos.request(path)
        elif self.viewer.result is None:
            for pane in [self.viewer.main_pane, *self.viewer.grid_panes]:
                pane.title.setText(f"{path.name} · {self._waiting_text()}")
        self.current = path
        self.engine.request(path, self.method, self.params, keep_layers=self._inspector_shown())

    def _is_current(self, path) -> bool:
        return path is not None and self.current is not None and Path(path) == self.current

    @Slot(object, object)
    def _on_photo_loaded(self, path: Path, photo: np.ndarray) -> None:
        if self._is_current(path) and self.viewer.result is None and not self.viewer.has_photo():
            self.viewer.set_photo(photo, f"{path.name} · {self._waiting_text()}")

    @Slot(object, str)
    def _on_photo_failed(self, path: Path, message: str) -> None:
        if self._is_current(path):
            self._show_unreadable(path, message)

    @Slot(object)
    def _on_photo(self, photo: np.ndarray) -> None:
        if self.current is not None and self.viewer.result is None and not self.viewer.has_photo():
            self.viewer.set_photo(photo, f"{self.current.name} · {self._waiting_text()}")

    @Slot(object)
    def _on_result(self, result: ExplainResult) -> None:
        """A final result, or a partial one (the predicted class first) that the final one replaces."""
        path = result.request.path
        if path is not None and not self._is_current(path):
            return
        entry = self.browser.model.entry(path) if path else None
        if not result.partial and path is not None:
            self._recent.pop(Path(path), None)
            self._recent[Path(path)] = result
            while len(self._recent) > RECENT_RESULTS:
                self._recent.pop(next(iter(self._recent)))
        if self.review and self.grading.session is not None:
            if not result.partial:
                self.grading.set_quality(result.quality)
                g = result.grade
                names = result.explanation.class_names
                name = names[g] if g < len(names) else str(g)
                self.grading.set_model_output(f"{g} · {name} ({float(result.probs[g]):.0%})")
            if not self.grading.ai_visible:
                self._hold(result)
                return
        self._held = None
        if not result.partial:
            self.controls.set_kinds(result.kinds)
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
            if not self._is_current(path):
                return
        self._show_unreadable(path, message)

    def _show_unreadable(self, path, message: str) -> None:
        """An image that cannot be shown: said once, where the image would be; nothing to explain."""
        if path is not None:
            self.browser.model.set_error(path, message)
        self.notice.hide()
        self.viewer.show_message(f"⚠  {message}")
        self.prediction.clear("Could not read this image")
        self.histogram.set_counts(None, 0)
        self.controls.setEnabled(False)
        if not self.notices or self.notices[-1] != message:
            self.notices.append(message)
            self.noticeShown.emit(message)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_label.setText(f"model: {info.source}")
        self.model_label.setToolTip(f"{info.arch}, input {info.input_size} px, {info.model_id}")
        self.device_label.setText(info.device)
        if self.grading.session is not None:
            self.grading.session.model = info.model_id
        for action in self.model_group.actions():
            action.setChecked(Path(action.data()).name == Path(info.source).name)
        self.controls.set_class_names(info.class_names)
        self.browser.set_class_names(info.class_names)
        self._name_class_actions(info.class_names)
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
        running = done < total
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self._grading = "running" if running else self._grading
        self._update_progress_text()

    @Slot()
    def _update_progress_text(self) -> None:
        """The status bar counts what the list header counts: graded and unreadable files of the folder."""
        total, graded, unreadable = self.browser.counts()
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(graded + unreadable)
        text = f"grading · {graded} of {total} graded"
        self.progress.setFormat(text + (f" · {unreadable} unreadable" if unreadable else ""))
        if self._grading in ("stopped", "done"):
            head = "Grading stopped" if self._grading == "stopped" else "Folder graded"
            text = f"{head} · {graded} of {total} graded"
            self.grading_label.setText(text + (f" · {unreadable} unreadable" if unreadable else ""))
        else:
            self.grading_label.setText("")

    @Slot(object)
    def _on_scoring_finished(self, completed: bool) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self._grading = "done" if completed else "stopped"
        self._update_progress_text()

    # --- review mode -------------------------------------------------------------------------------
    @Slot(bool)
    def set_review_mode(self, on: bool) -> None:
        """Review mode on: the folder's review project is opened (the reviewer's name asked once) and the
        window moves to the first image not graded yet; keys 0-4 grade instead of showing a class."""
        on = bool(on)
        if on != self.review:
            self.review = on
            if on and self.folder is not None:
                resume = self._start_review()
                if resume is not None:
                    self.browser.select_path(resume)
            elif not on:
                self.grading.close_session()
                self.boxes["Review"].hide()
                self.browser.model.set_hide_unreviewed(False)
                self._set_ai_visible(True)
        self._sync_review_actions()

    def _sync_review_actions(self) -> None:
        self.actions["toggle_review"].setChecked(self.review)
        # The keys 0-4 are QAction shortcuts, which Qt dispatches before any key event: off while reviewing,
        # so that keyPressEvent gets them for the grading panel.
        for k in range(5):
            self.actions[f"class_{k}"].setEnabled(not self.review)

    def _start_review(self) -> Path | None:
        """Open the review project of the open folder; the image to resume at (None when not opened:
        review mode is then turned off and the notice says why)."""
        files = [e.path for e in self.browser.model.entries()]
        info = self.engine.model_info
        index = self.grading.open_folder(self.folder, files, model=info.model_id if info else None)
        session = self.grading.session
        if index is None or session is None:
            self.review = False
            self.grading.close_session()
            self._sync_review_actions()
            return None
        self.boxes["Review"].show()
        self.browser.model.set_hide_unreviewed(session.hide_ai)
        self._mark_reviewed()
        if self.agreement_dock.isVisible():
            self.agreement.refresh(session.store)
        return files[index]

    def _mark_reviewed(self) -> None:
        """The list marks each image with the reviewer's saved decision."""
        session = self.grading.session
        if session is None or self.folder is None:
            return
        try:
            records = session.store.records(reviewer=session.store.reviewer)
        except RetinaviewError as exc:
            records = []
            self.show_notice(str(exc))
        decided = {r.file: _decision(r) for r in records}
        for e in self.browser.model.entries():
            self.browser.model.set_reviewed(e.path, decided.get(e.path.name))

    def _review_allows(self, path: Path) -> bool:
        """Before the window shows ``path`` in review mode: the grade of the image on screen is saved
        first; False (the selection goes back, the grading panel says why) when it cannot be."""
        session = self.grading.session
        if not self.review or session is None:
            return True
        index = session.index_of(path.name)
        if index is None or self.grading.request_move(index):
            return True
        if self.current is not None:
            self._reverting = True
            try:
                self.browser.select_path(self.current)
            finally:
                self._reverting = False
        return False

    @Slot()
    def _review_next(self) -> None:
        session = self.grading.session
        if session is None:
            return
        index = session.next_index()
        if index is None:
            self.statusBar().showMessage(
                "Last image of the folder: every image has been shown", 5000
            )
            return
        path = session.files[index]
        if not self.browser.select_path(path):
            # Hidden by a filter: show the whole list rather than skip the image.
            self.browser.set_review_filter(None)
            self.browser.filter.setCurrentIndex(0)
            self.browser.select_path(path)

    @Slot(int)
    def _review_undone(self, index: int) -> None:
        session = self.grading.session
        if session is None:
            return
        self._mark_reviewed()
        if index >= 0:
            self.browser.select_path(session.files[index])

    @Slot(object)
    def _on_review_committed(self, record) -> None:
        if self.folder is not None:
            self.browser.model.set_reviewed(self.folder / record.file, _decision(record))
        if self.agreement_dock.isVisible() and self.grading.session is not None:
            self.agreement.refresh(self.grading.session.store)

    @Slot(bool)
    def _on_agreement_shown(self, shown: bool) -> None:
        self.actions["show_agreement"].setChecked(shown)
        if shown and self.grading.session is not None:
            self.agreement.refresh(self.grading.session.store)

    # --- reports and the patient view -------------------------------------------------------------------
    def _record_of(self, path: Path):
        session = self.grading.session
        if session is None:
            return None
        try:
            records = session.store.records(reviewer=session.store.reviewer)
        except RetinaviewError:
            return None
        return next((r for r in records if r.file == path.name), None)

    def _model_allowed(self, path: Path) -> bool:
        session = self.grading.session
        return not self.review or session is None or session.ai_visible(path)

    def _eyes(self, patient: bool) -> list[tuple[str, Path, ExplainResult]] | None:
        """(side, path, result) of the current image, or of both eyes of its patient; None with a notice
        when they are not all explained yet or the model is still hidden for one."""
        from retinaview.ui.patient_view import pair_eyes, patient_of

        if self.current is None or self.current not in self._recent:
            self.show_notice("Nothing to report yet: wait for the image's map")
            return None
        paths = [("", self.current)]
        if patient:
            who = patient_of(self.current)
            if who is None:
                self.show_notice(
                    f"{self.current.name}: not named {{patient}}_left / {{patient}}_right"
                )
                return None
            pair = pair_eyes(e.path for e in self.browser.model.entries()).get(who[0], {})
            paths = [(side, pair[side]) for side in ("left", "right") if side in pair]
        eyes = []
        for side, path in paths:
            if not self._model_allowed(path):
                self.show_notice(
                    f"{path.name}: save your grade first (the report shows the model's)"
                )
                return None
            result = self._recent.get(path)
            if result is None:
                self.show_notice(f"{path.name}: show this image first, then export the report")
                return None
            eyes.append((side, path, result))
        return eyes

    def export_report(self, patient: bool = False) -> None:
        """A one-page PDF of the image (or both eyes of its patient): photograph, map, grade, review."""
        from retinaview.ui.report import ReportInfo, eye_from_result, write_report

        eyes = self._eyes(patient)
        if eyes is None:
            return
        stem = eyes[0][1].stem.rsplit("_", 1)[0] if patient else eyes[0][1].stem
        start = self.export_folder() / f"{stem}_report.pdf"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export report", str(start), "PDF (*.pdf)", options=FILE_DIALOG_OPTIONS
        )
        if not path:
            return
        st = self.controls.state
        info = self.engine.model_info
        report = ReportInfo(
            model=info.source if info else "unknown model",
            checksum=info.model_id if info else "",
            method=self.method,
            threshold=st.threshold,
            mode=st.mode,
            cmap=st.colormap,
        )
        parts = [
            eye_from_result(p.name, r, self._record_of(p), r.quality, side, kind=st.kind)
            for side, p, r in eyes
        ]
        self._run_export(Path(path), lambda: write_report(path, parts, report))

    @Slot()
    def show_patient(self) -> None:
        """Both eyes of the current image's patient side by side (EyePACS ``{patient}_{left|right}``)."""
        from retinaview.ui.patient_view import PatientView, patient_of

        eyes = self._eyes(patient=True)
        if eyes is None:
            return
        if self.patient_view is None:
            self.patient_view = PatientView()
            self.patient_view.setWindowTitle("Patient — retinaview")
            self.patient_view.resize(1100, 640)
        view = self.patient_view
        view.set_patient(patient_of(self.current)[0])
        for side, path, r in eyes:
            ex = r.explanation
            record = self._record_of(path)
            view.set_eye(
                side,
                path.name,
                r.photo,
                r.probs,
                ex.maps[r.grade],
                ex.fov,
                record.grade if record else None,
                record.note if record else "",
                to_photo=r.to_photo,
            )
        view.show()

    def _hold(self, result: ExplainResult) -> None:
        """Keep the model's output of the current image off screen: the photograph alone, no grade."""
        self._held = None if result.partial else result
        name = self.current.name if self.current is not None else ""
        title = f"{name} · model hidden"
        if self.viewer.result is not None or not self.viewer.has_photo():
            self.viewer.set_photo(result.photo, title)
        else:
            for pane in [self.viewer.main_pane, *self.viewer.grid_panes]:
                pane.title.setText(title)
        self.histogram.set_counts(None, 0)
        if not result.partial:
            self.resultHeld.emit(result)

    @Slot(bool)
    def _set_ai_visible(self, visible: bool) -> None:
        """Show or hide everything the model says of the current image: the prediction, the map and its
        distribution, the list's grades of images not graded by the reviewer."""
        session = self.grading.session
        visible = visible or not self.review  # outside review mode the model is always shown
        self.boxes["Prediction"].setVisible(visible)
        self.boxes["Distribution of the map"].setVisible(visible)
        self.browser.model.set_hide_unreviewed(
            self.review and session is not None and session.hide_ai
        )
        if not visible and self.viewer.result is not None:
            self._hold(self.viewer.result)
        elif visible and self._held is not None:
            # Drawn on the next turn of the event loop: Enter saves and moves on at once, and the image
            # left behind need not be drawn first.
            QTimer.singleShot(0, self._show_held)

    def _show_held(self) -> None:
        held = self._held
        allowed = not self.review or self.grading.ai_visible
        if held is not None and self._is_current(held.request.path) and allowed:
            self._on_result(held)

    def keyPressEvent(self, event) -> None:
        if self.review and self.grading.session is not None and self.grading.handle_key(event):
            return
        super().keyPressEvent(event)

    # --- view state --------------------------------------------------------------------------------
    @Slot(object)
    def _on_state(self, state: ViewState) -> None:
        old = self.viewer.state
        self.viewer.set_state(state)
        if self._inspector is not None:
            self._inspector.set_state(state)
        if (state.cls, state.kind, state.grid, state.smooth) != (
            old.cls,
            old.kind,
            old.grid,
            old.smooth,
        ):
            self._update_histogram()
        self._update_histogram_cut()
        self._sync_actions(state)

    def _sync_actions(self, state: ViewState) -> None:
        """The View menu's ticks follow the state, whichever control changed it."""
        checks = {
            "toggle_overlay": state.overlay,
            "toggle_green": state.green,
            "toggle_grid": state.grid,
            "toggle_smooth": state.smooth,
            "toggle_colormap": state.colormap == DEFAULT_COLORMAP,
            "predicted_class": state.cls is None,
        }
        checks.update({f"class_{k}": state.cls == k for k in range(5)})
        for name, on in checks.items():
            self.actions[name].setChecked(on)

    def _name_class_actions(self, names: tuple[str, ...]) -> None:
        self.actions["predicted_class"].setText("&Predicted Class")
        for k in range(5):
            name = names[k] if k < len(names) else str(k)
            self.actions[f"class_{k}"].setText(f"Class &{k} · {name}")

    def _update_histogram(self) -> None:
        result = self.viewer.result
        if result is None:
            self.histogram.set_counts(None, 0)
            return
        c = self._histogram_class()
        self.histogram.set_counts(self.viewer.prepared((c,)), c)

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
        kinds = list(self.controls.kinds())
        st = self.controls.state
        if len(kinds) < 2:
            return
        at = kinds.index(st.kind) if st.kind in kinds else -1
        self.controls.change(kind=kinds[(at + 1) % len(kinds)])

    def _toggle_colormap(self) -> None:
        st = self.controls.state
        names = list(COLORMAPS)
        self.controls.change(colormap=names[(names.index(st.colormap) + 1) % len(names)])

    # --- notices and help --------------------------------------------------------------------------
    def show_notice(self, message: str) -> None:
        """A one-line message above the image, shown once, that goes after a few seconds or when the next
        image is shown (never a modal box). An unreadable image is said where the image would be instead."""
        self.notices.append(message)
        self.notice.setText(f"⚠  {message}")
        self.notice.show()
        self.notice_timer.start()
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

        if self.train_dialog is None:
            self.train_dialog = TrainDialog(self)
            self.train_dialog.modelReady.connect(self.open_model)
        self.train_dialog.show()
        self.train_dialog.raise_()

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
        # The inspector is wide: the splitter gives it the browser's width; give that back when it closes.
        if on and self.centre_stack.currentWidget() is not self._inspector:
            self._sizes_before_inspector = self.splitter.sizes()
        elif not on and self._sizes_before_inspector is not None:
            sizes, self._sizes_before_inspector = self._sizes_before_inspector, None
            QTimer.singleShot(0, lambda: self.splitter.setSizes(sizes))
        # Zoom and pan carry over between the overlay and the inspector (same photograph coordinates).
        if on and self._inspector.result is not None:
            self._inspector.set_view_rect(self.viewer.panes()[0].box.viewRect())
        elif not on and self._inspector.result is not None and self.viewer.result is not None:
            self.viewer.panes()[0].box.setRange(self._inspector.view_rect(), padding=0)
        # A stacked widget is as wide as its widest page, shown or not: a hidden inspector must not keep
        # the centre wide and the browser narrow.
        policy = QSizePolicy.Policy.Preferred if on else QSizePolicy.Policy.Ignored
        self._inspector.setSizePolicy(policy, policy)
        self.centre_stack.setCurrentWidget(self._inspector if on else self.viewer)
        if on and self.current is not None:
            self._on_current(self.current)

    def set_inspector_layer(self, layer: int) -> None:
        if self._inspector is not None:
            self._inspector.set_layer(layer)

    def _export_target(self, title: str, suffixes: str, what: str) -> Path | None:
        """Ask where to save (opening in the last export's folder or the image's); None if cancelled or
        there is nothing to export yet."""
        result = self.viewer.result
        if result is None:
            self.show_notice("Nothing to export yet: open an image first")
            return None
        c = self.viewer.shown_classes()[0]
        if not all(result.is_done(k) for k in self.viewer.shown_classes()):
            self.show_notice(f"Class {c} is still being computed: export it when it is shown")
            return None
        stem = result.request.path.stem if result.request.path else "retinaview"
        start = self.export_folder() / f"{stem}_{what}"
        path, _ = QFileDialog.getSaveFileName(
            self, title, str(start), suffixes, options=FILE_DIALOG_OPTIONS
        )
        if not path:
            return None
        s = app_settings()
        s.setValue("files/last_export", str(Path(path).resolve().parent))
        s.sync()
        return Path(path)

    def _export_stem(self) -> str:
        kind = self.viewer.current_kind()
        if self.viewer.state.grid:
            return f"all_classes_{kind}"
        return f"class{self.viewer.shown_classes()[0]}_{kind}"

    def current_map(self, photo_space: bool = True) -> np.ndarray:
        """The float map shown now (first shown class, raw), on the photograph's pixels when possible."""
        result = self.viewer.result
        ex = result.explanation
        c = self.viewer.shown_classes()[0]
        m = float_maps(result, self.viewer.current_kind())[c]
        if photo_space and ex.geometry is not None and result.photo is not ex.display:
            return np.asarray(ex.geometry.to_photo(m), dtype=np.float32)
        return m

    def export_overlay(self, c: int) -> np.ndarray:
        """(h, w, 4) uint8 RGBA of class ``c``'s map at model resolution, drawn for an export by
        `retinaview.core.common.render` from the float map, with the field of view, threshold, sign mode,
        palette, opacity and smoothing on screen: it shows the pixels the screen shows."""
        from retinaview.core.common.render import render_overlay, smooth

        result = self.viewer.result
        ex = result.explanation
        st = self.controls.state
        score = float_maps(result, self.viewer.current_kind())[c]
        if st.smooth:
            score = smooth(score, ex.fov)
        return render_overlay(score, ex.fov, st.threshold, st.mode, st.colormap, st.opacity)

    def _photo_overlay(self, c: int) -> np.ndarray:
        from retinaview.ui.export import resample_to_photo

        result = self.viewer.result
        return resample_to_photo(self.export_overlay(c), result.to_photo, result.photo.shape[:2])

    def _base_photo(self) -> np.ndarray:
        photo = self.viewer.result.photo
        if self.controls.state.green:
            return np.repeat(photo[..., 1:2], 3, axis=2)
        return photo

    def export_panels(self) -> list[tuple[str, np.ndarray]]:
        """What the centre shows, as (title, RGB image) per map: the photograph (or its green channel) with
        the overlay when it is on, cut to the zoomed region."""
        from retinaview.core.common.render import composite

        result = self.viewer.result
        st = self.controls.state
        base = self._base_photo()
        h, w = base.shape[:2]
        rect = self.viewer.panes()[0].box.viewRect()
        x0, x1 = max(int(rect.left()), 0), min(int(np.ceil(rect.right())), w)
        y0, y1 = max(int(rect.top()), 0), min(int(np.ceil(rect.bottom())), h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            x0, y0, x1, y1 = 0, 0, w, h
        names = result.explanation.class_names
        kind = kind_label(self.viewer.current_kind()).lower().removesuffix(" map")
        panels = []
        for c in self.viewer.shown_classes():
            image = composite(base, self._photo_overlay(c)) if st.overlay else base
            name = names[c] if c < len(names) else str(c)
            mark = " · predicted" if c == result.grade else ""
            title = f"{c} · {name}  {result.probs[c]:.0%} · {kind} map{mark}"
            panels.append((title, np.ascontiguousarray(image[y0:y1, x0:x1])))
        return panels

    def export_caption(self) -> list[str]:
        result = self.viewer.result
        st = self.controls.state
        names = result.explanation.class_names
        g = result.grade
        name = result.request.path.name if result.request.path else "image"
        shown = self.viewer.shown_classes()
        classes = "all classes" if st.grid else f"class {shown[0]} · {names[shown[0]]}"
        return [
            f"{name} · {classes} · predicted {g} · {names[g]} ({result.probs[g]:.0%})",
            f"{method_label(result.request.method)} · threshold {st.threshold:.1f} σ · "
            f"model {result.model.source if result.model else 'unknown'}",
        ]

    @Slot()
    def export_png(self) -> None:
        """File ▸ Export View as PNG: the maps as on screen, with titles, colour bar, legend and caption."""
        from retinaview.ui.export import save_screen_png

        if self.viewer.result is None:
            self.show_notice("Nothing to export yet: open an image first")
            return
        chosen, width = ask_export_width(self)
        if not chosen:
            return
        path = self._export_target(
            "Export the view as PNG", "PNG image (*.png)", f"{self._export_stem()}_view.png"
        )
        if path is None:
            return
        columns = self.viewer.columns if self.controls.state.grid else 1
        self._run_export(
            path,
            lambda: save_screen_png(
                path,
                self.export_panels(),
                self.viewer.legend_info() if self.controls.state.overlay else None,
                self.export_caption(),
                columns=columns,
                map_width=width,
            ),
        )

    @Slot()
    def export_map_png(self) -> None:
        """File ▸ Export Map Alone as PNG: one class's map over the photograph, at its resolution."""
        from retinaview.ui.export import save_view_png

        path = self._export_target(
            "Export the map over the photograph", "PNG image (*.png)", f"{self._export_stem()}.png"
        )
        if path is None:
            return
        c = self.viewer.shown_classes()[0]
        self._run_export(
            path, lambda: save_view_png(path, self._base_photo(), self._photo_overlay(c))
        )

    @Slot()
    def export_gif(self) -> None:
        from retinaview.ui.export import save_blend_gif

        path = self._export_target(
            "Export an animated GIF", "GIF animation (*.gif)", f"{self._export_stem()}.gif"
        )
        if path is None:
            return
        c = self.viewer.shown_classes()[0]
        self._run_export(
            path, lambda: save_blend_gif(path, self._base_photo(), self._photo_overlay(c))
        )

    @Slot()
    def export_map(self) -> None:
        from retinaview.ui.export import save_map

        path = self._export_target(
            "Export the map", "NumPy array (*.npy);;CSV table (*.csv)", f"{self._export_stem()}.npy"
        )
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
        self.splitter.setSizes(self._default_sizes(self.splitter.width()))

    @staticmethod
    def _default_sizes(width: int) -> list[int]:
        return [BROWSER_WIDTH, max(width - BROWSER_WIDTH - SIDE_WIDTH, 200), SIDE_WIDTH]

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
        training = self.train_dialog is not None and self.train_dialog.is_running()
        if training:
            if not ask_training_quit(self):
                event.ignore()
                return
            self.statusBar().showMessage("Stopping the training after this step…")
            self.train_dialog.shutdown()
        if self.persist:
            self.save_settings()
        self.grading.close_session()
        if self.patient_view is not None:
            self.patient_view.close()
            self.patient_view.deleteLater()
        self.photos.shutdown()
        self.engine.close()
        if self._inspector is not None:
            self._inspector.shutdown()
        self.browser.thumbnails.shutdown()
        super().closeEvent(event)


def _decision(record) -> str:
    """The list's mark of a saved review record: the grade, or U for ungradable."""
    return "U" if not record.gradable or record.grade is None else str(record.grade)
