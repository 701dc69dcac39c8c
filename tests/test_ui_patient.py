"""The patient view: EyePACS names pair the eyes, both eyes side by side with linked zoom, each eye's grade
and map, and the patient grade only where a both-eyes head gave one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRectF

from retinaview.ui.patient_view import PatientView, pair_eyes, patient_of
from tests.ui_layout import text_problems


def test_pair_eyes_by_eyepacs_names():
    files = [
        "10_left.jpeg",
        "10_right.jpeg",
        "13_right.png",
        "notes.png",
        "a_b_LEFT.tif",
        "15_lefty.jpeg",
    ]
    pairs = pair_eyes(files)
    assert pairs == {
        "10": {"left": Path("10_left.jpeg"), "right": Path("10_right.jpeg")},
        "13": {"right": Path("13_right.png")},
        "a_b": {"left": Path("a_b_LEFT.tif")},
    }
    assert patient_of("/x/y/99_right.jpg") == ("99", "right")
    assert patient_of("99.jpg") is None


def _eye(size: int, shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:size, :size] / size
    photo = np.zeros((size, size, 3), np.uint8)
    fov = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.2
    photo[fov] = (170, 70, 40)
    score = np.exp(-((yy - 0.3) ** 2 + (xx - 0.3 - shift / size) ** 2) / 0.003)
    return photo, score.astype(np.float32), fov


@pytest.fixture
def view(qtbot):
    v = PatientView()
    qtbot.addWidget(v)
    v.resize(1440, 880)
    v.show()
    return v


def test_both_eyes_linked_zoom_grades_maps_and_patient_grade(qtbot, view):
    view.set_patient("10")
    left, ls, lf = _eye(200, 0)
    right, rs, rf = _eye(100, 10)  # another size: zoom follows as a fraction of each photograph
    view.set_eye(
        "left", "10_left.jpeg", left, [0.1, 0.7, 0.1, 0.05, 0.05], ls, lf, reviewer_grade=2
    )
    view.set_eye(
        "right", "10_right.jpeg", right, [0.05, 0.05, 0.1, 0.2, 0.6], rs[::2, ::2], rf[::2, ::2]
    )
    L, R = view.eyes["left"], view.eyes["right"]
    assert "10_left.jpeg" in L.title.text() and "10_right.jpeg" in R.title.text()
    assert "1 · Mild (70 %)" in L.model.text() and "2 · Moderate" in L.reviewer.text()
    assert "4 · Proliferative (60 %)" in R.model.text() and "–" in R.reviewer.text()
    assert "no both-eyes model" in view.patient_grade.text()
    # Each eye's map is drawn at the threshold (a map at half resolution is resized to the photograph).
    assert not np.array_equal(L.shown, left) and not np.array_equal(R.shown, right)
    assert L.shown.shape == left.shape and R.shown.shape == right.shape
    view.maps.setChecked(False)
    assert np.array_equal(L.shown, left) and np.array_equal(R.shown, right)
    view.maps.setChecked(True)
    drawn = int(np.any(L.shown != left, axis=2).sum())
    view.set_threshold(3.5)
    assert 0 < int(np.any(L.shown != left, axis=2).sum()) < drawn

    # Zooming the left eye onto its upper-left quarter shows the right eye's upper-left quarter.
    L.box.setRange(QRectF(0, 0, 100, 100), padding=0)
    r = R.box.viewRect()
    assert r.center().x() == pytest.approx(25, abs=2) and r.center().y() == pytest.approx(25, abs=2)
    assert min(r.width(), r.height()) == pytest.approx(50, rel=0.05)
    R.box.setRange(QRectF(50, 50, 50, 50), padding=0)
    lr = L.box.viewRect()
    assert lr.center().x() == pytest.approx(150, abs=4) and lr.center().y() == pytest.approx(
        150, abs=4
    )

    view.set_patient_grade(3, [0.1, 0.1, 0.2, 0.5, 0.1])
    assert "3 · Severe (50 %)" in view.patient_grade.text()
    view.set_patient("13")
    assert L.shown is None and "no both-eyes model" in view.patient_grade.text()


def test_patient_view_text_fits_at_1440x880(qtbot, view):
    view.set_patient("10")
    left, ls, lf = _eye(120, 0)
    view.set_eye(
        "left", "10_left.jpeg", left, [0.1, 0.7, 0.1, 0.05, 0.05], ls, lf, reviewer_grade=4
    )
    view.set_eye("right", "10_right.jpeg", left[:, ::-1], [0.1, 0.1, 0.1, 0.1, 0.6], ls, lf)
    view.set_patient_grade(4, [0.0, 0.1, 0.1, 0.1, 0.7])
    qtbot.wait(10)
    assert text_problems(view) == []
