"""Study mode: each case shows exactly what its arm allows, answers with grade, confidence and time reach the
study file, and the reader has no way to change the arm."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLineEdit, QSlider, QSpinBox

from retinaview.core.common.study import ReaderSession, create_study
from retinaview.ui.study_window import StudyWindow
from tests.ui_layout import text_problems


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def study(tmp_path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    yy, xx = np.mgrid[:64, :64]
    for k in range(6):
        img = np.zeros((64, 64, 3), np.uint8)
        img[(yy - 32) ** 2 + (xx - 32) ** 2 < 28**2] = (150 + 10 * k, 60, 30)
        Image.fromarray(img).save(images / f"{k}_left.png")
    return create_study(images, tmp_path / "study.sqlite", readers=3, seed=4, map_threshold=1.5)


def _score() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:32, :32]
    score = np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / 8.0) - 0.02
    return score.astype(np.float32), (yy - 16) ** 2 + (xx - 16) ** 2 < 14**2


@pytest.fixture
def window(qtbot, study):
    clock = Clock()
    w = StudyWindow(ReaderSession(study, reader=2), clock=clock)
    w.clock = clock
    qtbot.addWidget(w)
    w.resize(1440, 880)
    w.show()
    yield w
    w.close()


def test_each_arm_shows_only_what_it_allows_and_answers_are_recorded(qtbot, window, study):
    probs = [0.1, 0.15, 0.6, 0.1, 0.05]
    score, fov = _score()
    seen = {}
    case = window.next_case()
    while case is not None:
        photo = window.photo_rgb.copy()
        # A new case starts with nothing chosen.
        assert not any(b.isChecked() for b in window.grade_buttons + window.confidence_buttons)
        assert window.photo.rgb is not None and np.array_equal(window.photo.rgb, photo)
        if case.arm == "unassisted":
            assert window.ready and not window.waiting.isVisible()
        else:
            # The case is not complete (nor timed) until the model's output is there.
            assert not window.ready and window.waiting.isVisible()
            qtbot.keyClick(window, Qt.Key.Key_1)
            assert window.grade is None
        # The application hands every case the model's output; the window drops what the arm forbids.
        window.set_model_output(case, probs, score, fov)
        assert window.ready
        model_shown = window.model_box.isVisible()
        map_shown = window.map_legend.isVisible()
        overlay_drawn = not np.array_equal(window.photo.rgb, photo)
        seen[case.arm] = (model_shown, map_shown, overlay_drawn)
        if case.arm == "unassisted":
            assert not window.model_grade.text()
        elif case.arm == "grade":
            assert window.model_grade.text() == "2 · Moderate"
            assert window.probabilities.values[2].text() == "60 %"
        window.clock.t += 4.0 + case.position
        qtbot.keyClick(window, Qt.Key.Key_3)
        qtbot.keyClick(window, Qt.Key.Key_Return)
        assert "confidence" in window.status.text()  # confidence is asked for
        qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
        with qtbot.waitSignal(window.answered) as got:
            qtbot.keyClick(window, Qt.Key.Key_Return)
        assert got.args[1:] == [3, 4, pytest.approx(4.0 + case.position)]
        case = window.next_case() if window.case is None else window.case
    assert seen == {
        "unassisted": (False, False, False),
        "grade": (True, False, False),
        "grade+map": (True, True, True),
    }
    assert window.progress.text() == "Done: 6 of 6"
    rows = sqlite3.connect(study).execute(
        "SELECT position, grade, confidence, seconds FROM cases WHERE reader = 2 ORDER BY position"
    )
    assert [(g, c, s) for _, g, c, s in rows] == [(3, 4, 4.0 + p) for p in range(6)]


def test_reader_cannot_switch_arms_or_answer_another_case(qtbot, window):
    case = window.next_case()
    # No control could pick an arm, a threshold or a case.
    for kind in (QComboBox, QSlider, QSpinBox, QLineEdit):
        assert window.findChildren(kind) == []
    # Output of another case (a late result) is ignored.
    other = type(case)(**{**case.__dict__, "position": case.position + 1, "arm": "grade+map"})
    window.set_model_output(other, [0, 0, 0, 0, 1], *_score())
    assert not window.model_box.isVisible()


def test_study_window_text_fits_at_1440x880(qtbot, window):
    case = window.next_case()
    while case is not None and case.arm != "grade+map":
        window.set_model_output(case, [0.2] * 5, *_score())
        window.set_grade(0)
        window.set_confidence(3)
        window.submit_answer()
        case = window.case
    window.set_model_output(case, [0.05, 0.05, 0.1, 0.2, 0.6], *_score())
    window.set_grade(4)
    qtbot.wait(10)
    assert text_problems(window) == []


def test_study_window_driven_by_the_engine(qtbot, study):
    """The wiring the application uses: caseShown -> Engine.request; resultReady -> set_model_output with
    the predicted class's map placed by the result's affine."""
    from retinaview.engine.worker import Engine
    from tests.fake_backend import FakeBackend

    engine = Engine(FakeBackend(input_size=32))
    window = StudyWindow(ReaderSession(study, reader=1))
    qtbot.addWidget(window)
    window.show()
    wanted = {}

    def on_case(case):
        if case.shows_model:
            wanted[engine.request(case.path)] = case

    def on_result(result):
        case = wanted.get(result.request.generation)
        if case is None or result.partial:
            return
        ex = result.explanation
        window.set_model_output(case, result.probs, ex.total[result.grade], ex.fov, result.to_photo)

    window.caseShown.connect(on_case)
    engine.resultReady.connect(on_result)
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    try:
        shown = []
        window.next_case()
        while window.case is not None:
            case = window.case
            if case.shows_model:
                qtbot.waitUntil(lambda: window.ready, timeout=10_000)
            photo = window.photo_rgb
            drawn = not np.array_equal(window.photo.rgb, photo)
            shown.append((case.arm, window.model_box.isVisible(), drawn))
            window.set_grade(1)
            window.set_confidence(2)
            assert window.submit_answer()
        assert {a: (m, d) for a, m, d in shown} == {
            "unassisted": (False, False),
            "grade": (True, False),
            "grade+map": (True, True),
        }
        assert window.session.progress() == (6, 6)
    finally:
        window.close()
        engine.close()
