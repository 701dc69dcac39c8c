"""Thumbnails decoded off the GUI thread, only for rows that are shown, at most once per file; and the
selected photograph, decoded off the GUI thread too.

Decoding runs in a private thread pool; QImage is safe to build in any thread (QPixmap is not), and the GUI
thread turns it into an icon when it arrives.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

THUMB_SIZE = 72


class _Signals(QObject):
    ready = Signal(str, QImage)


class _Task(QRunnable):
    def __init__(self, path: str, size: int, signals: _Signals) -> None:
        super().__init__()
        self.path, self.size, self.signals = path, size, signals

    def run(self) -> None:
        self.signals.ready.emit(self.path, thumbnail(self.path, self.size))


def thumbnail(path: str, size: int) -> QImage:
    """A reduced copy of an image file (JPEG decodes at reduced scale); a null image if unreadable.

    Pillow rather than QImageReader: Qt logs a warning for every broken file, and a folder with broken
    files is a normal situation here, reported once by the engine when the file is opened.
    """
    try:
        from PIL import Image, ImageOps

        with Image.open(path) as img:
            img.draft("RGB", (size, size))
            img = ImageOps.exif_transpose(img)
            img.thumbnail((size, size))
            rgb = img.convert("RGB")
            data = rgb.tobytes()
            qimg = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
            return qimg.copy()
    except (
        Exception
    ):  # any unreadable file gets a placeholder; the engine says why when it is opened
        return QImage()


class ThumbnailLoader(QObject):
    """``request(path)`` schedules a thumbnail once; ``ready(path, QImage)`` delivers it (null if unreadable)."""

    ready = Signal(str, QImage)

    def __init__(self, size: int = THUMB_SIZE, threads: int = 1, parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._signals = _Signals()
        self._signals.ready.connect(self._on_ready)
        self._asked: set[str] = set()

    def request(self, path: str | Path) -> None:
        key = str(path)
        if key in self._asked:
            return
        self._asked.add(key)
        self._pool.start(_Task(key, self.size, self._signals))

    def clear(self) -> None:
        """Forget what was asked (a new folder); tasks already queued are dropped."""
        self._pool.clear()
        self._asked.clear()

    def pending(self) -> int:
        return self._pool.activeThreadCount()

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()

    @Slot(str, QImage)
    def _on_ready(self, path: str, image: QImage) -> None:
        if path in self._asked:
            self.ready.emit(path, image)


class _PhotoSignals(QObject):
    loaded = Signal(str, object)
    failed = Signal(str, str)


class _PhotoTask(QRunnable):
    def __init__(self, path: str, signals: _PhotoSignals) -> None:
        super().__init__()
        self.path, self.signals = path, signals

    def run(self) -> None:
        from retinaview.core.common.errors import RetinaviewError
        from retinaview.core.common.io import load_image

        try:
            photo = load_image(self.path)
        except RetinaviewError as exc:
            self.signals.failed.emit(self.path, str(exc))
            return
        self.signals.loaded.emit(self.path, photo)


class PhotoLoader(QObject):
    """Decodes the selected photograph off the GUI thread, so it is on screen at once, even while the model
    loads or explains another image. ``loaded(path, array)`` or ``failed(path, one line)`` answers the
    newest request only."""

    loaded = Signal(object, object)
    failed = Signal(object, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _PhotoSignals()
        self._signals.loaded.connect(self._on_loaded)
        self._signals.failed.connect(self._on_failed)
        self._wanted: str | None = None

    def request(self, path: str | Path) -> None:
        self._wanted = str(path)
        self._pool.clear()
        self._pool.start(_PhotoTask(self._wanted, self._signals))

    def shutdown(self) -> None:
        self._wanted = None
        self._pool.clear()
        self._pool.waitForDone()

    @Slot(str, object)
    def _on_loaded(self, path: str, photo: object) -> None:
        if path == self._wanted:
            self.loaded.emit(Path(path), photo)

    @Slot(str, str)
    def _on_failed(self, path: str, message: str) -> None:
        if path == self._wanted:
            self.failed.emit(Path(path), message)
