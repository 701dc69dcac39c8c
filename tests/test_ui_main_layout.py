"""The main window's text fits at the screen sizes a clinician uses (single view and grid, bundled samples)."""

from __future__ import annotations

from pathlib import Path

from retinaview.engine.worker import Engine
from retinaview.ui.main_window import MainWindow
from tests.fake_backend import FakeBackend
from tests.ui_layout import SCREEN_SIZES, text_problems

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


def test_no_text_is_cut_at_common_screen_sizes(qtbot):
    engine = Engine(FakeBackend(input_size=128))
    win = MainWindow(engine, restore=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    with qtbot.waitSignal(engine.scoringFinished, timeout=60_000):
        with qtbot.waitSignal(win.resultShown, timeout=30_000):
            win.open_path(SAMPLES)
    problems = []
    for size in SCREEN_SIZES:
        for grid in (False, True):
            win.resize(*size)
            win.controls.change(grid=grid)
            qtbot.wait(30)
            win._initial_sizes()
            qtbot.wait(30)
            where = f"{size[0]}x{size[1]} {'grid' if grid else 'single'}"
            problems += [f"{where}: {p}" for p in text_problems(win)]
    win.close()
    assert not problems, "\n".join(problems)


def test_review_mode_text_fits_at_common_screen_sizes(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    engine = Engine(FakeBackend(input_size=128))
    win = MainWindow(engine, restore=False, review=True)
    win.grading.ask_reviewer = lambda parent: "Ana"
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    with qtbot.waitSignal(engine.scoringFinished, timeout=60_000):
        with qtbot.waitSignal(win.resultHeld, timeout=30_000):
            win.open_path(SAMPLES)
    win.agreement_dock.show()
    problems = []
    for size in SCREEN_SIZES:
        win.resize(*size)
        qtbot.wait(30)
        win._initial_sizes()
        qtbot.wait(30)
        problems += [f"{size[0]}x{size[1]} review: {p}" for p in text_problems(win)]
    win.close()
    assert not problems, "\n".join(problems)
