"""Qt test set-up: offscreen platform, a private settings folder, and a check that no test leaks windows
or engine threads (after ndv's ``_catch_qt_leaks``)."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

# The offscreen platform plugin logs this for every top-level window it shows; it says nothing about us.
OFFSCREEN_NOISE = "This plugin does not support"


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture(autouse=True)
def _private_settings(tmp_path_factory, monkeypatch) -> None:
    """Tests never read or write the user's settings."""
    monkeypatch.setenv("RETINAVIEW_SETTINGS_DIR", str(tmp_path_factory.mktemp("settings")))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch) -> None:
    """Tests never read or write the user's cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _catch_qt_leaks(request):
    """Fail a test that leaves top-level widgets or engine threads behind."""
    if "qapp" not in request.fixturenames and "qtbot" not in request.fixturenames:
        yield
        return
    from PySide6.QtWidgets import QApplication

    from retinaview.engine.worker import Engine

    app = QApplication.instance()
    before = set(app.topLevelWidgets()) if app else set()
    yield
    app = QApplication.instance()
    app.processEvents()
    gc.collect()
    app.processEvents()
    leaked = [w for w in app.topLevelWidgets() if w not in before and w.isVisible()]
    threads = Engine.running_threads()
    assert not leaked, f"widgets left open: {leaked}"
    assert threads == 0, f"{threads} engine thread(s) still running"
