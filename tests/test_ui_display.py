"""What the main window shows must be the selected image's, readable and complete (numpy stand-in engine)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QFileDialog

from retinaview.engine.worker import Engine
from retinaview.ui import main_window as mw
from retinaview.ui.main_window import MainWindow
from retinaview.ui.overlay_view import EMPTY_TEXT
from retinaview.ui.prediction_panel import PredictionPanel
from retinaview.ui.settings import app_settings
from tests.fake_backend import FakeBackend


@pytest.fixture(scope="module")
def retina_small() -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    img = resize(data.retina(), (240, 240), anti_aliasing=True)
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


def _window(qtbot, backend: FakeBackend, start: bool = True) -> MainWindow:
    engine = Engine(backend)
    win = MainWindow(engine, restore=False)
    qtbot.addWidget(win)
    win.resize(1440, 880)
    win.show()
    if start:
        with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
            engine.start()
    return win


@pytest.fixture
def window(qtbot):
    win = _window(qtbot, FakeBackend(input_size=96))
    yield win
    win.close()


def _open(qtbot, win, folder) -> None:
    with qtbot.waitSignal(win.engine.scoringFinished, timeout=20_000):
        with qtbot.waitSignal(win.resultShown, timeout=20_000):
            assert win.open_path(folder)


def _shown(win, name: str):
    return win.resultShown, lambda r: r.request.path.name == name


def test_panels_never_show_the_previous_images_results(qtbot, folder):
    """Moving on: the panel shows the new image's ground truth and a computing state at once, and the
    centre no longer shows the previous map."""
    win = _window(qtbot, FakeBackend(input_size=96, delay=0.6))
    with qtbot.waitSignal(win.resultShown, timeout=20_000):
        win.open_path(folder / "eye0.png")
    truth = win.prediction._values["truth"]
    assert truth.text().startswith("<span") and "0 ·" in truth.text()
    win.engine.cancel_scoring()
    win.browser.select_path(folder / "eye1.png")
    # Before eye1's result: nothing of eye0 anywhere.
    assert win.viewer.result is None
    assert "3" in truth.text() and "0 ·" not in truth.text()
    assert "eye1.png" in win.prediction.detail.text()
    assert "computing" in win.prediction._values["time"].text()
    assert win.histogram.curve.yData is None or len(win.histogram.curve.yData) == 0
    signal, check = _shown(win, "eye1.png")
    with qtbot.waitSignal(signal, timeout=20_000, check_params_cb=check):
        pass
    assert "3 ·" in truth.text()
    win.close()


def test_photograph_shows_while_the_model_loads(qtbot, folder):
    """The engine has not loaded a model yet: the photograph is on screen anyway, and the centre never
    asks to open a folder while one is open."""
    win = _window(qtbot, FakeBackend(input_size=96), start=False)
    assert win.open_path(folder)
    qtbot.waitUntil(win.viewer.has_photo, timeout=10_000)
    assert win.viewer.stack.currentWidget() is win.viewer.single
    assert win.viewer.result is None
    title = win.viewer.main_pane.title.text
    assert "eye0.png" in title and "loading the model" in title
    assert EMPTY_TEXT not in win.viewer.empty.text()
    win.close()


def test_unreadable_image_is_said_once_and_disables_the_map_controls(qtbot, window, folder):
    _open(qtbot, window, folder)
    window.statusBar().clearMessage()
    with qtbot.waitSignal(window.noticeShown, timeout=10_000) as notice:
        window.browser.select_path(folder / "eye9_corrupt.jpg")
    message = notice.args[0]
    assert "eye9_corrupt.jpg" in message
    assert not window.notice.isVisible(), "said in the centre, not in a banner as well"
    assert message not in window.statusBar().currentMessage()
    assert message in window.viewer.empty.text()
    assert not window.controls.isEnabled()
    signal, check = _shown(window, "eye2.png")
    with qtbot.waitSignal(signal, timeout=10_000, check_params_cb=check):
        window.browser.select_path(folder / "eye2.png")
    assert window.controls.isEnabled()


def test_banner_goes_when_the_next_image_is_selected(qtbot, window, folder):
    _open(qtbot, window, folder)
    window.show_notice("something went wrong")
    assert window.notice.isVisible()
    signal, check = _shown(window, "eye1.png")
    with qtbot.waitSignal(signal, timeout=10_000, check_params_cb=check):
        window.browser.select_path(folder / "eye1.png")
    assert not window.notice.isVisible()


def test_header_and_status_bar_agree_on_counts(qtbot, window, folder):
    _open(qtbot, window, folder)
    assert window.browser.counts() == (4, 3, 1)
    assert window.browser.count.text() == "4 images · 1 unreadable"
    assert window.grading_label.text() == "Folder graded · 3 of 4 graded · 1 unreadable"
    window._update_progress_text()
    assert window.progress.format() == "grading · 3 of 4 graded · 1 unreadable"


def test_quitting_during_training_asks_first(qtbot, window, monkeypatch):
    class Training:
        running, stopped = True, False

        def is_running(self) -> bool:
            return self.running

        def shutdown(self) -> None:
            self.stopped, self.running = True, False

    training = Training()
    window.train_dialog = training
    answers = iter([False, True])
    monkeypatch.setattr(mw, "ask_training_quit", lambda parent: next(answers))
    window.close()
    assert window.isVisible() and not training.stopped, "keep training: the window stays"
    window.close()
    assert not window.isVisible() and training.stopped
    window.train_dialog = None


def test_view_menu_ticks_follow_the_state_and_name_the_grades(qtbot, window, folder):
    _open(qtbot, window, folder)
    actions = window.actions
    for name in ("toggle_overlay", "toggle_green", "toggle_grid", "toggle_smooth"):
        assert actions[name].isCheckable(), name
    assert actions["toggle_overlay"].isChecked() and not actions["toggle_green"].isChecked()
    window.controls.change(green=True, cls=3)
    assert actions["toggle_green"].isChecked()
    assert actions["class_3"].isChecked() and not actions["predicted_class"].isChecked()
    assert "Severe" in actions["class_3"].text() and "No DR" in actions["class_0"].text()
    actions["toggle_grid"].trigger()
    assert window.controls.state.grid and actions["toggle_grid"].isChecked()


def test_probability_axis_reads_grades_before_any_result(qtbot):
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    ticks = panel.bars.getPlotItem().getAxis("bottom")._tickLevels
    assert ticks is not None and [t for t, _ in ticks[0]] == [0, 1, 2, 3, 4]
    assert panel.bars.getPlotItem().viewRange()[0] == pytest.approx([-0.6, 4.6])


def test_grid_titles_say_the_map_kind_and_the_note_is_there(qtbot, window, folder):
    _open(qtbot, window, folder)
    window.controls.change(grid=True, kind="input")
    titles = [p.title.text for p in window.viewer.grid_panes]
    assert all("input-dependent map" in t for t in titles)
    assert "raise the score of" in window.viewer.note.text


def test_legend_says_what_is_drawn(qtbot, window, folder):
    _open(qtbot, window, folder)
    legend = window.viewer.legend
    assert legend.isVisible()
    text = legend.text.text()
    assert "cyan" in text and "indigo" in text and "smoothed" in text and "score per pixel" in text
    window.controls.change(smooth=False, mode="absolute", threshold=1.5)
    text = legend.text.text()
    assert "raw" in text and "for and against" in text and "1.5 σ" in text


@pytest.mark.parametrize("smooth", [True, False])
@pytest.mark.parametrize("mode", ["positive", "negative", "absolute"])
def test_exported_mask_equals_the_screen_mask(
    qtbot, window, folder, tmp_path, monkeypatch, mode, smooth
):
    """File > Export Map Alone: the coloured pixels of the PNG are exactly the pixels drawn on screen
    (sigma over the field of view, the same quantisation and lookup table)."""
    from retinaview.ui.export import resample_to_photo

    _open(qtbot, window, folder)
    window.controls.change(mode=mode, smooth=smooth, threshold=1.2, opacity=1.0)
    result = window.viewer.result
    c = window.viewer.shown_classes()[0]
    out = tmp_path / "out" / "map.png"
    out.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    window.export_map_png()
    png = np.asarray(Image.open(out).convert("RGB"))
    changed = (png != result.photo).any(axis=2)
    screen = window.viewer.overlay_mask(c)
    assert screen.any()
    # The screen's mask, placed on the photograph's pixels as the overlay item is.
    rgba = np.zeros((*screen.shape, 4), np.uint8)
    rgba[screen] = 255
    on_photo = resample_to_photo(rgba, result.to_photo, result.photo.shape[:2])[..., 3] > 0
    np.testing.assert_array_equal(changed, on_photo)
    np.testing.assert_array_equal(window.export_overlay(c)[..., 3] > 0, screen)
    # The next save dialog opens where this one saved.
    assert window.export_folder() == out.parent.resolve()


def test_export_view_is_a_page_with_maps_legend_and_caption(
    qtbot, window, folder, tmp_path, monkeypatch
):
    _open(qtbot, window, folder)
    window.controls.change(grid=True, green=True)
    out = tmp_path / "view.png"
    seen = {}

    def save_name(parent, title, start, filters, **kwargs):
        seen["start"] = start
        return str(out), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_name)
    monkeypatch.setattr(mw, "ask_export_width", lambda parent: (True, 300))
    window.export_png()
    # With no export yet, the dialog opens in the image's folder.
    assert Path(seen["start"]).parent == folder.resolve()
    page = np.asarray(Image.open(out).convert("RGB"))
    columns = window.viewer.columns
    assert page.shape[1] >= columns * 300
    caption = window.export_caption()
    assert "eye0.png" in caption[0] and "all classes" in caption[0]
    assert "Score propagation (exact)" in caption[1] and "1.2" not in caption[1]
    panels = window.export_panels()
    assert len(panels) == 5 and all("total map" in t for t, _ in panels)
    # Green channel on screen: the exported photograph is grey where no map is drawn.
    img = panels[0][1]
    grey = (img[..., 0] == img[..., 1]) & (img[..., 1] == img[..., 2])
    assert grey.mean() > 0.5


def test_labels_found_under_eyepacs_and_aptos_names(qtbot, window, folder):
    from retinaview.train.data import find_labels_csv

    (folder / "labels.csv").rename(folder / "trainLabels.csv")
    _open(qtbot, window, folder)
    assert window.browser.model.entry(folder / "eye1.png").truth == 3
    assert find_labels_csv(folder) == folder / "trainLabels.csv"


def test_settings_keep_absolute_folder_and_reset(qtbot, folder, monkeypatch):
    monkeypatch.chdir(folder.parent)
    win = MainWindow(Engine(FakeBackend(input_size=64)), restore=True)
    qtbot.addWidget(win)
    assert win.open_path(Path(folder.name))
    win.controls.change(threshold=3.3, colormap="green_indigo", smooth=False)
    win.save_settings()
    stored = app_settings().value("files/last_folder")
    assert os.path.isabs(stored) and Path(stored) == folder.resolve()
    win.actions["reset_view"].trigger()
    st = win.controls.state
    assert (st.threshold, st.colormap, st.smooth) == (2.0, "cyan_indigo", True)
    assert app_settings().value("view/threshold") is None
    win.close()


def test_browser_gets_its_width_back_after_the_inspector(qtbot, window, folder):
    _open(qtbot, window, folder)
    qtbot.wait(50)
    before = window.splitter.sizes()
    window.inspector_action.setChecked(True)
    with qtbot.waitSignal(window._inspector.layerShown, timeout=20_000):
        pass
    # The inspector asks for room; whatever the splitter gave it, closing gives the widths back.
    window.splitter.setSizes([150, before[1] + before[0] - 150, before[2]])
    window.inspector_action.setChecked(False)
    qtbot.wait(100)
    assert window.splitter.sizes() == before


def test_grid_maps_sit_under_their_titles_at_one_size(qtbot, window, folder):
    _open(qtbot, window, folder)
    window.resize(1920, 1080)
    window.controls.change(grid=True)
    qtbot.wait(100)
    viewer = window.viewer
    heights = {round(p.box.geometry().height()) for p in viewer.grid_panes}
    assert len(heights) == 1, f"map rows of different heights: {heights}"
    h, w = viewer.result.photo.shape[:2]
    for pane in viewer.grid_panes:
        top_left = pane.box.mapViewToScene(QPointF(0, 0))
        bottom_right = pane.box.mapViewToScene(QPointF(w, h))
        title_bottom = pane.title.sceneBoundingRect().bottom()
        assert top_left.y() - title_bottom < 8, "a gap between the title and its map"
        # The whole photograph is shown, as large as the cell allows.
        cell = pane.box.sceneBoundingRect()
        side = min(cell.width(), cell.height())
        assert bottom_right.x() - top_left.x() > 0.95 * side * min(1.0, w / h)


def test_one_labels_file_discovery(tmp_path):
    from retinaview.core.common.errors import DataError
    from retinaview.core.common.labels import find_labels_csv
    from retinaview.train.data import find_labels_csv as training_finds
    from retinaview.ui.labels import read_labels

    assert find_labels_csv(tmp_path) is None and read_labels(tmp_path) == {}
    with pytest.raises(DataError, match="no labels CSV"):
        training_finds(tmp_path)
    (tmp_path / "train.csv").write_text("id_code,diagnosis\nabc,2\n")
    assert find_labels_csv(tmp_path) == training_finds(tmp_path) == tmp_path / "train.csv"
    assert read_labels(tmp_path) == {"abc": 2}
    (tmp_path / "trainLabels.csv").write_text("image,level\n10_left,4\n")
    assert read_labels(tmp_path) == {"10_left": 4}
    other = tmp_path / "other"
    other.mkdir()
    for name in ("a.csv", "b.csv"):
        (other / name).write_text("image,level\nx,1\n")
    with pytest.raises(DataError, match="several CSV files"):
        read_labels(other)
