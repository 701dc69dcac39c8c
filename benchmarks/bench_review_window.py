"""Review mode in the main window, printed (not a timed test): the time from the key press that saves a grade
(Enter) to the next image on screen, ``python -m benchmarks.bench_review_window [--engine fake|torch]``.

The bundled sample photographs are copied to a temporary folder with a fresh review project. For each image
the reviewer presses a grade key, then Enter: the grade is saved (one SQLite transaction), the window moves to
the next image and the engine explains it. Two figures per engine, from one run:

- model shown (hide-the-model off): Enter -> the next image's map drawn (``resultShown``) and painted;
- model hidden (the default): Enter -> the next image's photograph on screen (its result is held back
  until the reviewer's grade is saved) and painted.

The ``fake`` engine (numpy stand-in) gives the window's own cost; ``torch`` adds the bundled model's
explanation on this machine's CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


def _wait(app, condition, timeout: float = 300.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the window did not answer in time")
        app.processEvents()
        time.sleep(0.0005)


def _engine(kind: str):
    if kind == "torch":
        from retinaview.commands.view import make_engine

        return make_engine("default")
    from retinaview.engine.worker import Engine
    from tests.fake_backend import FakeBackend

    return Engine(FakeBackend(input_size=512))


def run_one(app, kind: str, hide: bool, tmp: Path) -> list[float]:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from retinaview.ui.grading_panel import write_hide_ai
    from retinaview.ui.main_window import MainWindow

    folder = tmp / f"{kind}-{'hidden' if hide else 'shown'}"
    shutil.copytree(SAMPLES, folder)
    write_hide_ai(hide)
    engine = _engine(kind)
    win = MainWindow(engine, restore=False, review=True)
    win.grading.ask_reviewer = lambda parent: "bench"
    win.resize(1440, 880)
    win.show()
    got: list[str] = []
    signal = win.resultHeld if hide else win.resultShown
    signal.connect(lambda r: got.append(r.request.path.name))
    engine.start()
    _wait(app, lambda: engine.model_info is not None)
    win.open_path(folder)
    _wait(app, lambda: bool(got))
    times = []
    n = len(win.grading.session.files)
    for i in range(n - 1):
        QTest.keyClick(win, Qt.Key(Qt.Key.Key_0 + i % 5))
        nxt = win.grading.session.files[i + 1].name
        got.clear()
        t0 = time.perf_counter()
        QTest.keyClick(win, Qt.Key.Key_Return)
        if hide:
            _wait(app, lambda nxt=nxt: win.current.name == nxt and win.viewer.has_photo())
        else:
            _wait(app, lambda nxt=nxt: nxt in got)
        win.repaint()
        times.append(time.perf_counter() - t0)
    win.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("fake", "torch"), action="append")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RETINAVIEW_SETTINGS_DIR"] = str(Path(tmp) / "settings")
        os.environ["XDG_DATA_HOME"] = str(Path(tmp) / "data")
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance() or QApplication([])
        for kind in args.engine or ["fake"]:
            for hide in (False, True):
                t = np.array(run_one(app, kind, hide, Path(tmp))) * 1000
                what = (
                    "model hidden: Enter -> next photograph"
                    if hide
                    else ("model shown:  Enter -> next image's map")
                )
                print(f"{kind:5s} {what}: median {np.median(t):7.1f} ms, max {t.max():7.1f} ms "
                      f"({len(t)} images)")  # fmt: skip


if __name__ == "__main__":
    main()
