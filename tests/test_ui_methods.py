"""The Method selector and the Model menu of the main window (numpy stand-in backend), and the engine's
torch-free list of method names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retinaview.engine.requests import METHOD_NAMES, bundled_models
from retinaview.engine.worker import Engine
from retinaview.ui.main_window import MainWindow
from tests.fake_backend import FakeBackend


def test_the_engine_names_every_registered_method():
    import retinaview.core.api  # noqa: F401  (registers the methods)
    from retinaview.core.explain.methods import METHODS

    assert set(METHOD_NAMES) == set(METHODS)
    assert any(p.name == "paper17_synthetic.pt" for p in bundled_models())


@pytest.fixture
def window(qtbot, tmp_path):
    rng = np.random.default_rng(1)
    for k in range(2):
        Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(
            tmp_path / f"eye{k}.png"
        )
    engine = Engine(FakeBackend(input_size=64))
    win = MainWindow(engine, restore=False, review=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    with qtbot.waitSignal(engine.scoringFinished, timeout=20_000):
        with qtbot.waitSignal(win.resultShown, timeout=20_000):
            assert win.open_path(tmp_path / "eye1.png")
    yield win
    win.close()


def test_method_with_one_map_kind_shows_its_kind_and_check(qtbot, window):
    win = window
    combo = win.controls.method
    assert [combo.itemData(i) for i in range(combo.count())] == list(METHOD_NAMES)
    assert win.controls.kind.count() == 3 and win.controls.kind.isEnabled()
    with qtbot.waitSignal(win.resultShown, timeout=20_000) as shown:
        combo.setCurrentIndex(combo.findData("saliency"))
    result = shown.args[0]
    assert result.request.method == "saliency" and result.kinds == ("map",)
    assert result.request.path.name == "eye1.png"
    # The kind selector offers the result's one kind; rfscore's chosen kind is kept for later.
    assert win.controls.kind.count() == 1 and not win.controls.kind.isEnabled()
    assert win.controls.kind.currentText() == "Method's map"
    assert win.viewer.current_kind() == "map" and win.controls.state.kind == "total"
    assert win.viewer.overlay_mask().any()
    assert win.prediction.check_name.text() == "Completeness"
    assert win.prediction._values["residual"].text() == "error 0.0e+00"

    with qtbot.waitSignal(win.resultShown, timeout=20_000) as shown:
        combo.setCurrentIndex(combo.findData("rfscore"))
    assert shown.args[0].kinds == ("total", "input", "constant")
    assert win.controls.kind.count() == 3 and win.viewer.current_kind() == "total"
    assert win.prediction.check_name.text() == "Conservation"


def test_model_menu_lists_the_bundled_models_and_keeps_the_image(qtbot, window):
    win = window
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Model")
    names = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert "paper17_synthetic" in names and names[-1] == "Open &Model…"
    action = next(a for a in menu.actions() if a.text() == "paper17_synthetic")
    with qtbot.waitSignal(win.resultShown, timeout=20_000) as shown:
        action.trigger()
    assert Path(shown.args[0].model.source.split()[-1]).name == "paper17_synthetic.pt"
    assert shown.args[0].request.path.name == "eye1.png" and action.isChecked()


def test_the_next_session_reopens_the_image_method_and_panels(qtbot, tmp_path):
    from retinaview.ui.app import _default_path

    rng = np.random.default_rng(2)
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(
            tmp_path / f"eye{k}.png"
        )

    def session():
        engine = Engine(FakeBackend(input_size=64))
        win = MainWindow(engine, restore=True, review=False)
        qtbot.addWidget(win)
        win.show()
        with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
            engine.start()
        return win

    first = session()
    with qtbot.waitSignal(first.resultShown, timeout=20_000):
        first.open_path(tmp_path / "eye2.png")
    with qtbot.waitSignal(first.resultShown, timeout=20_000):
        first.controls.method.setCurrentIndex(first.controls.method.findData("cam"))
    first.agreement_dock.show()
    first.close()

    assert Path(_default_path()) == tmp_path.resolve()
    again = session()
    assert again.method == "cam" and again.controls.method.currentData() == "cam"
    with qtbot.waitSignal(again.resultShown, timeout=20_000) as shown:
        again.open_path(_default_path())
    assert shown.args[0].request.path.name == "eye2.png"
    assert shown.args[0].request.method == "cam" and again.agreement_dock.isVisible()
    again.close()


def test_final_results_come_smoothed_from_the_worker(window):
    import dataclasses

    win = window
    result = win.viewer.result
    assert win.controls.state.smooth and set(result.smoothed) == set(result.kinds)
    from_worker = win.viewer.prepared()
    assert from_worker is result.smoothed[win.viewer.current_kind()]
    win.viewer.set_result(dataclasses.replace(result, smoothed={}))
    on_gui = win.viewer.prepared()
    c = result.grade
    diff = np.abs(from_worker.index[c].astype(int) - on_gui.index[c].astype(int))
    assert diff.max() <= 1 and np.allclose(from_worker.sigma[c], on_gui.sigma[c])
