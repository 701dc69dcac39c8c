"""Both eyes of a patient side by side: EyePACS names ``{patient}_{left|right}`` pair the photographs.

Each eye shows its photograph with the map of its predicted class at the chosen n-sigma threshold, its grade
and the reviewer's grade; zoom and pan of one eye are followed by the other, as a fraction of each photograph
(the two photographs may differ in size). The patient's grade of the both-eyes head is shown where such a head
is loaded. Inputs are numpy arrays and numbers; the window gets them from the engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QCheckBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from retinaview.ui.map_render import map_over_photo
from retinaview.ui.theme import GRADE_COLOURS, IMAGE_BACKGROUND, MUTED

__all__ = ["SIDES", "EyePane", "PatientView", "pair_eyes", "patient_of"]

SIDES = ("left", "right")
GRADE_NAMES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")
_EYE = re.compile(r"^(?P<patient>.+)_(?P<side>left|right)$", re.IGNORECASE)


def patient_of(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """(patient, side) of an EyePACS file name ``{patient}_{left|right}.ext``, or None."""
    m = _EYE.match(Path(path).stem)
    if m is None:
        return None
    return m.group("patient"), m.group("side").lower()


def pair_eyes(files: Iterable[str | os.PathLike[str]]) -> dict[str, dict[str, Path]]:
    """Patient -> {"left": path, "right": path} for the files named ``{patient}_{left|right}``, in the
    order patients first appear; a patient with one eye only has one entry."""
    out: dict[str, dict[str, Path]] = {}
    for f in files:
        found = patient_of(f)
        if found is None:
            continue
        patient, side = found
        out.setdefault(patient, {}).setdefault(side, Path(f))
    return out


def _grade_text(grade: int | None, probs: Sequence[float] | None = None) -> str:
    if grade is None:
        return "–"
    extra = "" if probs is None else f" ({100 * float(probs[grade]):.0f} %)"
    return (
        f"<span style='color:{GRADE_COLOURS[grade]}'>{grade} · {GRADE_NAMES[grade]}{extra}</span>"
    )


class EyePane(QWidget):
    """One eye: a title, the photograph (with its map) in a view box, its grades."""

    def __init__(self, side: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.title = QLabel(f"{side.capitalize()} eye")
        self.title.setObjectName("panelTitle")
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(IMAGE_BACKGROUND)
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.box.setDefaultPadding(0.01)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.model = QLabel("Model: –")
        self.reviewer = QLabel("Reviewer: –")
        self.photo: np.ndarray | None = None
        self.score: np.ndarray | None = None
        self.fov: np.ndarray | None = None
        self.to_photo: tuple[float, float, float, float] | None = None
        self.shown: np.ndarray | None = None  # exactly what is drawn
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        facts = QGridLayout()
        facts.addWidget(self.model, 0, 0)
        facts.addWidget(self.reviewer, 0, 1)
        layout.addLayout(facts)

    @property
    def photo_size(self) -> tuple[int, int] | None:
        """(width, height) of the photograph in pixels."""
        return None if self.photo is None else (self.photo.shape[1], self.photo.shape[0])

    def set_eye(
        self,
        name: str | None,
        photo: np.ndarray | None,
        probs: Sequence[float] | None = None,
        score: np.ndarray | None = None,
        fov: np.ndarray | None = None,
        reviewer_grade: int | None = None,
        reviewer_note: str = "",
        to_photo: tuple[float, float, float, float] | None = None,
    ) -> None:
        self.to_photo = to_photo
        self.title.setText(
            f"{self.side.capitalize()} eye · {name}"
            if name
            else f"{self.side.capitalize()} eye: none"
        )
        self.photo = None if photo is None else np.ascontiguousarray(photo, dtype=np.uint8)
        self.score, self.fov = score, fov
        grade = None if probs is None else int(np.argmax(probs))
        self.model.setText(f"Model: {_grade_text(grade, probs)}")
        self.reviewer.setText(f"Reviewer: {_grade_text(reviewer_grade)}")
        self.reviewer.setToolTip(reviewer_note)

    def draw(self, threshold: float, mode: str, maps: bool) -> None:
        if self.photo is None:
            self.shown = None
            self.image.clear()
            return
        score = self.score if maps else None
        self.shown = map_over_photo(
            self.photo, score, self.fov, n=threshold, mode=mode, to_photo=self.to_photo
        )
        self.image.setImage(self.shown, levels=(0, 255), autoLevels=False)


class PatientView(QWidget):
    """A patient's two eyes side by side with linked zoom, and the patient grade of a both-eyes head."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.threshold = 2.0
        self.mode = "positive"
        self.title = QLabel("No patient")
        self.title.setObjectName("panelTitle")
        self.patient_grade = QLabel("")
        self.maps = QCheckBox("Maps")
        self.maps.setChecked(True)
        self.maps.setToolTip("The map of each eye's predicted class over its photograph")
        self.maps.toggled.connect(lambda _on: self.redraw())
        self.eyes = {side: EyePane(side) for side in SIDES}
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.patient_grade, 1)
        head.addWidget(self.maps)
        panes = QHBoxLayout()
        for side in SIDES:
            panes.addWidget(self.eyes[side], 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(head)
        layout.addLayout(panes, 1)
        self._syncing = False
        for pane in self.eyes.values():
            pane.box.sigRangeChanged.connect(lambda box, *_r, p=pane: self._follow(p))
        self.set_patient_grade(None)

    def set_patient(self, patient: str) -> None:
        """Start showing a patient: both eyes are cleared until `set_eye` fills them."""
        self.title.setText(f"Patient {patient}")
        for pane in self.eyes.values():
            pane.set_eye(None, None)
            pane.draw(self.threshold, self.mode, False)
        self.set_patient_grade(None)

    def set_eye(
        self,
        side: str,
        name: str,
        photo: np.ndarray,
        probs: Sequence[float] | None = None,
        score: np.ndarray | None = None,
        fov: np.ndarray | None = None,
        reviewer_grade: int | None = None,
        reviewer_note: str = "",
        to_photo: tuple[float, float, float, float] | None = None,
    ) -> None:
        """One eye's photograph (H, W, 3) uint8, class probabilities, map of the predicted class, field of
        view, and the reviewer's grade. ``to_photo``: the engine's affine from the map's pixels to the
        photograph's (`ExplainResult.to_photo`); without it the map is taken to cover the photograph."""
        if side not in SIDES:
            raise ValueError(f"side must be 'left' or 'right', not {side!r}")
        pane = self.eyes[side]
        pane.set_eye(name, photo, probs, score, fov, reviewer_grade, reviewer_note, to_photo)
        pane.draw(self.threshold, self.mode, self.maps.isChecked())
        pane.box.autoRange(padding=0.01)

    def set_patient_grade(self, grade: int | None, probs: Sequence[float] | None = None) -> None:
        """The both-eyes head's grade of the patient, or None when no such head is loaded."""
        if grade is None:
            self.patient_grade.setText(
                f"<span style='color:{MUTED}'>patient grade: no both-eyes model loaded</span>"
            )
        else:
            self.patient_grade.setText(f"Patient grade (both eyes): {_grade_text(grade, probs)}")

    def set_threshold(self, n: float, mode: str | None = None) -> None:
        """Threshold of the maps in standard deviations (and the sign mode)."""
        self.threshold = float(n)
        if mode is not None:
            self.mode = mode
        self.redraw()

    def redraw(self) -> None:
        for pane in self.eyes.values():
            pane.draw(self.threshold, self.mode, self.maps.isChecked())

    def _follow(self, source: EyePane) -> None:
        """Show in the other eye the same part of its photograph (as fractions of width and height)."""
        if self._syncing or source.photo_size is None:
            return
        self._syncing = True
        try:
            sw, sh = source.photo_size
            r = source.box.viewRect()
            for pane in self.eyes.values():
                if pane is source or pane.photo_size is None:
                    continue
                w, h = pane.photo_size
                fx, fy = w / sw, h / sh
                pane.box.setRange(
                    QRectF(r.x() * fx, r.y() * fy, r.width() * fx, r.height() * fy), padding=0
                )
        finally:
            self._syncing = False
