"""Start the desktop app: theme, window on screen first, then the engine (which loads torch in its thread)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from retinaview.ui.settings import APPLICATION, ORGANISATION, app_settings
from retinaview.ui.theme import apply_theme

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
SCREENSHOT_TIMEOUT_S = 600


@dataclass
class ViewOptions:
    """What ``retinaview view`` was asked for."""

    path: str | None = None
    model: str = "default"
    cls: int | None = None
    threshold: float | None = None
    grid: bool = False
    screenshot: str | None = None
    panel: str = "overlay"
    layer: int | None = None
    autoplay: bool = False
    size: tuple[int, int] | None = None


def application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("retinaview")
    QGuiApplication.setDesktopFileName("org.retinaview.retinaview")
    apply_theme(app)
    return app


def create_window(options: ViewOptions, engine):
    """The main window for ``options``, shown, with ``engine`` (not started yet) started after the first
    paint."""
    from retinaview.ui.main_window import MainWindow

    window = MainWindow(engine, restore=options.screenshot is None)
    state = window.controls.state
    changes = {"grid": options.grid}
    if options.cls is not None:
        changes["cls"] = options.cls
    if options.threshold is not None:
        changes["threshold"] = min(max(options.threshold, 0.0), 5.0)
    window.controls.set_state(replace(state, **changes))
    if options.size:
        window.resize(*options.size)
    window.show()
    if options.panel == "inspector":
        window.inspector_action.setChecked(True)
        if options.layer is not None:
            window.set_inspector_layer(options.layer)
        if options.autoplay and window._inspector is not None:
            window._inspector.autoplay.setChecked(True)
    # The window paints first; torch loads in the worker thread afterwards.
    QTimer.singleShot(0, engine.start)
    path = options.path or _default_path()
    if path:
        QTimer.singleShot(0, lambda: window.open_path(path))
    return window


def _default_path() -> str | None:
    last = app_settings().value("files/last_folder", "")
    if isinstance(last, str) and last and Path(last).is_dir():
        return last
    return str(SAMPLES) if SAMPLES.is_dir() else None


class ScreenshotWhenReady(QObject):
    """Saves the window once the current image's result, the folder's grades and the thumbnails are in."""

    def __init__(self, window, path: str, timeout_s: float = SCREENSHOT_TIMEOUT_S) -> None:
        super().__init__(window)
        self.window, self.path = window, Path(path)
        self.deadline = time.monotonic() + timeout_s
        self.exit_code: int | None = None
        self._timer = QTimer(self, interval=100)
        self._timer.timeout.connect(self._check)
        self._timer.start()

    def ready(self) -> bool:
        w = self.window
        if w.engine.model_info is None:
            return False
        result = w.viewer.result
        if w.current is not None and (result is None or result.partial) and not w.notices:
            return False
        if w.progress.isVisible() or not w.inspector_ready():
            return False
        return w.browser.thumbnails.pending() == 0

    @Slot()
    def _check(self) -> None:
        if self.exit_code is not None:
            return
        if not self.ready():
            if time.monotonic() > self.deadline:
                print(f"retinaview: {self.path}: no result before the timeout", file=sys.stderr)
                self._finish(1)
            return
        # One more round of events so the last result and thumbnails are painted.
        self._timer.stop()
        QTimer.singleShot(300, self._save)

    @Slot()
    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ok = self.window.grab().save(str(self.path))
        if not ok:
            print(f"retinaview: {self.path}: could not write the screenshot", file=sys.stderr)
        self._finish(0 if ok else 1)

    def _finish(self, code: int) -> None:
        self.exit_code = code
        self._timer.stop()
        self.window.close()
        QApplication.instance().exit(code)


def run(options: ViewOptions, make_engine) -> int:
    """Run the app until its window closes; with ``options.screenshot`` save it and exit instead.

    ``make_engine()`` returns the `Engine` (called after the QApplication exists)."""
    app = application()
    window = create_window(options, make_engine())
    if options.screenshot:
        ScreenshotWhenReady(window, options.screenshot)
    code = app.exec()
    if window.isVisible():
        window.close()
    return int(code)
