"""The main window end to end, with the numpy stand-in backend (the model is not the point here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from retinaview.engine.worker import Engine
from retinaview.ui.labels import read_labels
from retinaview.ui.main_window import MainWindow
from tests.fake_backend import FakeBackend


@pytest.fixture(scope="module")
def retina_small() -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    img = resize(data.retina(), (320, 320), anti_aliasing=True)
    return (img * 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path, retina_small) -> Path:
    for k, shift in enumerate((0, 40, 80)):
        img = np.roll(retina_small, shift, axis=1)
        if k == 1:
            img = (img * 0.7).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"eye{k}.png")
    (tmp_path / "eye9_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "labels.csv").write_text("image,level\neye0,0\neye1,3\neye2,0\n")
    return tmp_path


@pytest.fixture
def window(qtbot):
    backend = FakeBackend(input_size=128)
    engine = Engine(backend)
    win = MainWindow(engine, restore=False)
    win.backend = backend
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    yield win
    win.close()


def _open(qtbot, win, folder) -> None:
    with qtbot.waitSignal(win.engine.scoringFinished, timeout=20_000):
        with qtbot.waitSignal(win.resultShown, timeout=20_000):
            assert win.open_path(folder)


def test_open_folder_results_slider_and_corrupt_file(qtbot, window, folder):
    _open(qtbot, window, folder)
    entries = {e.path.name: e for e in window.browser.model.entries()}
    assert set(entries) == {"eye0.png", "eye1.png", "eye2.png", "eye9_corrupt.jpg"}
    assert all(entries[f"eye{k}.png"].probs is not None for k in range(3))
    assert entries["eye9_corrupt.jpg"].error and entries["eye1.png"].truth == 3
    assert window.viewer.result.request.path.name == "eye0.png"

    # The slider re-thresholds the drawn map without asking the engine again.
    explained = len(window.backend.explained)
    low = window.viewer.overlay_mask().sum()
    window.controls.threshold.setValue(35)
    assert window.viewer.state.threshold == pytest.approx(3.5)
    high = window.viewer.overlay_mask().sum()
    assert 0 < high < low
    lut = window.viewer.main_pane.overlay.lut
    assert lut is not None and (lut[:, 3] > 0).sum() < 127
    assert len(window.backend.explained) == explained

    # A corrupt file: a one-line notice, and the rest keeps working.
    with qtbot.waitSignal(window.noticeShown, timeout=10_000) as notice:
        window.browser.select_path(folder / "eye9_corrupt.jpg")
    assert "eye9_corrupt.jpg" in notice.args[0] and "\n" not in notice.args[0]
    assert window.viewer.result is None
    with qtbot.waitSignal(
        window.resultShown,
        timeout=10_000,
        check_params_cb=lambda r: r.request.path.name == "eye2.png",
    ):
        window.browser.select_path(folder / "eye2.png")


def test_keyboard_navigation_and_toggles(qtbot, window, folder):
    _open(qtbot, window, folder)
    with qtbot.waitSignal(window.resultShown, timeout=10_000):
        qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.current.name == "eye1.png"
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.current.name == "eye9_corrupt.jpg"
    with qtbot.waitSignal(window.resultShown, timeout=10_000):
        qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.current.name == "eye0.png"
    assert window.viewer.main_pane.overlay.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.viewer.main_pane.overlay.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert window.viewer.state.green
    assert window.viewer.main_pane.photo.image.ndim == 2
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert window.viewer.state.grid
    classes = [p.cls for p in window.viewer.grid_panes]
    assert classes == [0, 1, 2, 3, 4]


def test_filter_and_sort(qtbot, window, folder):
    _open(qtbot, window, folder)
    b = window.browser
    b.filter.setCurrentIndex(b.filter.findData("disagree"))
    shown = {
        b.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 2) for r in range(b.proxy.rowCount())
    }
    expected = {str(e.path) for e in b.model.entries() if e.disagreement}
    assert shown == expected
    b.filter.setCurrentIndex(0)
    b.sort.setCurrentIndex(b.sort.findData("confidence"))
    confs = [
        b.model.entry(b.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 2)).confidence
        for r in range(b.proxy.rowCount())
    ]
    known = [c for c in confs if c is not None]
    assert known == sorted(known)


def test_settings_remember_threshold_and_colours(qtbot):
    def make():
        win = MainWindow(Engine(FakeBackend(input_size=64)), restore=True)
        qtbot.addWidget(win)
        return win

    win = make()
    win.controls.change(threshold=3.2, colormap="blue_orange")
    win.close()
    again = make()
    assert again.controls.state.threshold == pytest.approx(3.2)
    assert again.controls.state.colormap == "blue_orange"
    again.close()


def test_screenshot_command(tmp_path, folder):
    """`retinaview view --screenshot`: exits 0 with a picture of a dark window showing a green map.

    Compared by statistics, not with a golden file, so font rendering differences do not matter."""
    out = tmp_path / "shot.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "RETINAVIEW_SETTINGS_DIR": str(tmp_path)}
    import os

    from tests.helpers_models import small_checkpoint

    model = small_checkpoint(tmp_path / "model" / "small.pt")
    cmd = [sys.executable, "-m", "retinaview.cli", "view", str(folder / "eye0.png"), "--model"]
    cmd += [str(model), "--threshold", "1", "--size", "1200x760", "--screenshot", str(out)]
    subprocess.run(cmd, check=True, env={**os.environ, **env}, timeout=120)
    img = np.asarray(Image.open(out).convert("RGB")).astype(np.int32)
    assert img.shape == (760, 1200, 3)
    dark = (img.max(axis=2) < 60).mean()
    assert dark > 0.25, "the window should be mostly dark"
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    overlay_green = ((g > 150) & (g > r + 40) & (g > b + 40)).sum()
    assert overlay_green > 500, "the class map should be drawn on the photograph"


def test_rendering_is_repeatable(qtbot, window, folder):
    _open(qtbot, window, folder)
    first = window.grab().toImage()
    window.controls.change(threshold=4.0)
    window.controls.change(threshold=2.0)
    qtbot.wait(50)
    second = window.grab().toImage()

    def arr(qimg):
        qimg = qimg.convertToFormat(qimg.Format.Format_RGB888)
        w, h = qimg.width(), qimg.height()
        return np.frombuffer(qimg.constBits(), np.uint8, h * qimg.bytesPerLine()).reshape(h, -1)[
            :, : 3 * w
        ]

    diff = np.abs(arr(first).astype(int) - arr(second).astype(int))
    assert diff.mean() < 1.0


def test_labels_csv_layouts(tmp_path):
    (tmp_path / "labels.csv").write_text("id_code,diagnosis\nabc123,4\nxyz,0\n")
    assert read_labels(tmp_path) == {"abc123": 4, "xyz": 0}
    (tmp_path / "labels.csv").write_text("image,level\n10_left,2\n")
    assert read_labels(tmp_path) == {"10_left": 2}
    (tmp_path / "labels.csv").write_text("name,grade\nx,1\n")
    from retinaview.core.common.errors import DataError

    with pytest.raises(DataError, match="labels.csv line 1: expected columns"):
        read_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("image,level\nx,7\n")
    with pytest.raises(DataError, match="line 2: label '7' is not a grade 0-4"):
        read_labels(tmp_path)


def test_partial_result_shows_the_predicted_class_first(qtbot, folder):
    engine = Engine(FakeBackend(delay=0.5, input_size=128, progressive=True))
    win = MainWindow(engine, restore=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    win.controls.change(grid=True)
    with qtbot.waitSignal(win.partialShown, timeout=20_000) as partial:
        win.open_path(folder / "eye0.png")
    result = partial.args[0]
    grade = result.grade
    assert result.done == (grade,) and win.viewer.result is result
    panes = win.viewer.grid_panes
    assert [p.cls for p in panes] == [c if c == grade else None for c in range(5)]
    assert panes[grade].overlay.image is not None
    others = [p for c, p in enumerate(panes) if c != grade]
    assert all(p.overlay.image is None and "computing" in p.title.text for p in others)
    with qtbot.waitSignal(win.resultShown, timeout=20_000) as final:
        pass
    assert not final.args[0].partial
    assert [p.cls for p in panes] == [0, 1, 2, 3, 4]
    assert not any("computing" in p.title.text for p in panes)
    win.close()
