"""Review mode through the real main window (numpy stand-in backend): grades are saved before the screen
moves on, the model's output stays hidden until the reviewer's grade is saved, and the keys grade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from retinaview.engine.worker import Engine
from retinaview.ui.browser import COL_GRADE
from retinaview.ui.main_window import MainWindow
from tests.fake_backend import FakeBackend


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        pixels = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"eye{k}.png")
    return images


def _window(qtbot, review: bool = True) -> MainWindow:
    engine = Engine(FakeBackend(input_size=64))
    win = MainWindow(engine, restore=False, review=review)
    win.grading.ask_reviewer = lambda parent: "Ana"
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    return win


@pytest.fixture
def window(qtbot):
    win = _window(qtbot)
    yield win
    win.close()


def _records(win) -> dict[str, int | None]:
    store = win.grading.session.store
    return {r.file: r.grade for r in store.records(reviewer="Ana")}


def _open(qtbot, win, folder) -> None:
    with qtbot.waitSignal(win.engine.scoringFinished, timeout=20_000):
        with qtbot.waitSignal(win.resultHeld, timeout=20_000):
            assert win.open_path(folder)


def _grade_col(win, name: str) -> str:
    model = win.browser.model
    row = next(i for i, e in enumerate(model.entries()) if e.path.name == name)
    return model.data(model.index(row, COL_GRADE))


def test_model_hidden_until_the_grade_is_saved_and_saved_before_the_screen_moves(
    qtbot, window, folder
):
    win = window
    _open(qtbot, win, folder)
    assert win.current.name == "eye0.png" and win.boxes["Review"].isVisible()
    # Nothing of the model: no map or grade drawn, no prediction, no grade in the list.
    assert win.viewer.result is None and win.viewer.has_photo()
    assert "hidden" in win.viewer.main_pane.title.text
    assert not win.boxes["Prediction"].isVisible()
    assert _grade_col(win, "eye1.png") == "·"

    # Keys 0-4 grade (the "show class N" actions are off in review mode).
    qtbot.keyClick(win, Qt.Key.Key_2)
    assert win.grading.session.draft.grade == 2 and win.controls.state.cls is None
    assert _records(win) == {}

    # Enter saves, and the record is on disk before the next image is selected.
    seen: list[dict] = []
    win.browser.currentChanged.connect(lambda p: seen.append(_records(win)))
    with qtbot.waitSignal(win.resultHeld, timeout=20_000) as held:
        qtbot.keyClick(win, Qt.Key.Key_Return)
    assert seen == [{"eye0.png": 2}]
    assert held.args[0].request.path.name == "eye1.png" and win.viewer.result is None
    assert _grade_col(win, "eye0.png") != "·" and "✎2" in win.browser.model.data(
        win.browser.model.index(0, 0)
    )

    # Moving on with the arrow keys commits too; an incomplete draft keeps the screen where it is.
    qtbot.keyClick(win, Qt.Key.Key_U)  # ungradable, without a reason yet
    qtbot.keyClick(win, Qt.Key.Key_Right)
    assert win.current.name == "eye1.png" and win.browser.current_path().name == "eye1.png"
    assert "eye1.png" not in _records(win)
    qtbot.keyClick(win, Qt.Key.Key_U)
    qtbot.keyClick(win, Qt.Key.Key_4)
    with qtbot.waitSignal(win.resultHeld, timeout=20_000):
        qtbot.keyClick(win, Qt.Key.Key_Right)
    assert _records(win) == {"eye0.png": 2, "eye1.png": 4}

    # Back on a graded image the model's output is drawn, with its prediction.
    with qtbot.waitSignal(win.resultShown, timeout=20_000) as shown:
        qtbot.keyClick(win, Qt.Key.Key_Left)
    assert shown.args[0].request.path.name == "eye1.png"
    assert win.viewer.result is not None and win.boxes["Prediction"].isVisible()

    # Ctrl+Z undoes the last saved change.
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _records(win) == {"eye0.png": 2}


def test_reopening_resumes_at_the_first_image_not_graded(qtbot, folder):
    win = _window(qtbot)
    _open(qtbot, win, folder)
    for key in (Qt.Key.Key_1, Qt.Key.Key_Return):
        qtbot.keyClick(win, key)
    qtbot.waitUntil(lambda: win.current is not None and win.current.name == "eye1.png")
    qtbot.keyClick(win, Qt.Key.Key_3)  # entered, not saved: closing saves it
    win.close()

    again = _window(qtbot)
    asked = []
    again.grading.ask_reviewer = lambda parent: asked.append(1) or "Bo"
    _open(qtbot, again, folder)
    assert asked == [] and again.current.name == "eye2.png"
    assert _records(again) == {"eye0.png": 1, "eye1.png": 3}

    # Review mode off: the class keys show classes again and the model is drawn at once.
    again.set_review_mode(False)
    assert again.actions["class_3"].isEnabled() and again.boxes["Prediction"].isVisible()
    qtbot.keyClick(again, Qt.Key.Key_3)
    assert again.controls.state.cls == 3
    again.close()


def test_agreement_filter_limits_the_list(qtbot, window, folder):
    win = window
    _open(qtbot, win, folder)
    win.browser.set_review_filter({"eye1.png"})
    assert [p.name for p in win.browser.visible_paths()] == ["eye1.png"]
    win.browser.set_review_filter(None)
    assert len(win.browser.visible_paths()) == 3


def test_quality_gate_verdict_comes_with_the_result(qtbot, tmp_path, monkeypatch):
    """The gate runs in the engine's worker; a dark photograph gets the "ungradable: reason" badge in the
    grading panel (whether or not the model is hidden) and no confident grade in the prediction panel."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = tmp_path / "dark"
    folder.mkdir()
    Image.fromarray(np.full((96, 96, 3), 4, dtype=np.uint8)).save(folder / "dark.png")
    engine = Engine(FakeBackend(input_size=64, gate=True))
    win = MainWindow(engine, restore=False, review=True)
    win.grading.ask_reviewer = lambda parent: "Ana"
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    with qtbot.waitSignal(win.resultHeld, timeout=20_000) as held:
        assert win.open_path(folder)
    assert held.args[0].quality == "ungradable: too dark"
    assert "ungradable: too dark" in win.grading.quality_label.text()
    assert not win.boxes["Prediction"].isVisible()

    with qtbot.waitSignal(win.resultShown, timeout=20_000):
        win.set_review_mode(False)
    assert win.prediction.grade.text() == "Ungradable: too dark"
    assert "not to be trusted" in win.prediction.detail.text()
    win.close()


def test_reports_and_patient_view_of_a_pair_of_eyes(qtbot, tmp_path, monkeypatch, window):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = tmp_path / "pair"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for side in ("left", "right"):
        pixels = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p7_{side}.png")
    win = window
    out = tmp_path / "out"
    out.mkdir()
    asked = []
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        lambda *a, **k: (asked.append(1) or str(out / f"r{len(asked)}.pdf"), ""),
    )
    _open(qtbot, win, folder)
    # The model is hidden for the left eye: no report of it yet.
    win.export_report()
    assert asked == [] and "save your grade first" in win.notices[-1]
    qtbot.keyClick(win, Qt.Key.Key_1)
    with qtbot.waitSignal(win.resultHeld, timeout=20_000):
        qtbot.keyClick(win, Qt.Key.Key_Return)
    win.export_report(patient=True)
    assert "p7_right.png: save your grade first" in win.notices[-1]
    qtbot.keyClick(win, Qt.Key.Key_3)
    with qtbot.waitSignal(win.resultShown, timeout=20_000):
        qtbot.keyClick(win, Qt.Key.Key_Return)  # the last image: saved, shown, no move
    win.actions["export_report"].trigger()
    win.actions["export_patient_report"].trigger()
    assert (out / "r1.pdf").read_bytes()[:4] == b"%PDF" and (out / "r2.pdf").stat().st_size > 0

    win.actions["show_patient"].trigger()
    view = win.patient_view
    assert view.isVisible() and view.title.text() == "Patient p7"
    assert "p7_left.png" in view.eyes["left"].title.text()
    assert "3 · Severe" in view.eyes["right"].reviewer.text()
