"""Study mode: one reader grades the cases of a reader study (after Sayres et al. 2019), each shown exactly
as its arm allows.

- ``unassisted``: the photograph only, nothing of the model;
- ``grade``: the photograph and the model's grade and class probabilities;
- ``grade+map``: those and the map of the predicted class at the study's fixed threshold.

The window has no control that changes the arm, the threshold or the case order: those come from the study
file (`retinaview.core.common.study.ReaderSession`). It records the grade, the confidence (1-5) and the time
to grade: from the moment the case is complete on screen (the photograph, and the model's output when the arm
shows it) to the key press that answers.

The window does not run the model: it emits `caseShown` with the `Case`, and the application, when
``case.shows_model``, computes the model's output and hands it to `set_model_output`; whatever the arm does
not allow is dropped there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.io import load_image
from retinaview.core.common.study import Case, ReaderSession
from retinaview.ui.map_render import map_over_photo, qimage
from retinaview.ui.theme import GRADE_COLOURS, IMAGE_BACKGROUND

GRADE_NAMES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")
_ENTER = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class PhotoLabel(QLabel):
    """A photograph scaled to fit, aspect kept; ``rgb`` is exactly what is drawn."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet(f"background: {IMAGE_BACKGROUND};")
        self.rgb: np.ndarray | None = None
        self._pixmap: QPixmap | None = None

    def set_rgb(self, rgb: np.ndarray | None) -> None:
        self.rgb = rgb
        self._pixmap = None if rgb is None else QPixmap.fromImage(qimage(rgb))
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            self.clear()
            return
        self.setPixmap(
            self._pixmap.scaled(
                self.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def sizeHint(self) -> QSize:
        return QSize(640, 640)


class ProbabilityRows(QWidget):
    """The model's class probabilities as labelled bars, the predicted class in its grade colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(3)
        self.bars: list[QProgressBar] = []
        self.values: list[QLabel] = []
        for k, name in enumerate(GRADE_NAMES):
            grid.addWidget(QLabel(f"{k} {name}"), k, 0)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(False)
            bar.setMinimumWidth(80)
            grid.addWidget(bar, k, 1)
            value = QLabel("–")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setMinimumWidth(52)
            grid.addWidget(value, k, 2)
            self.bars.append(bar)
            self.values.append(value)
        grid.setColumnStretch(1, 1)

    def clear(self) -> None:
        for bar, value in zip(self.bars, self.values, strict=True):
            bar.setValue(0)
            value.setText("–")

    def set_probs(self, probs: Sequence[float]) -> None:
        grade = int(np.argmax(probs))
        for k, (bar, value) in enumerate(zip(self.bars, self.values, strict=True)):
            p = float(probs[k]) if k < len(probs) else 0.0
            bar.setValue(round(1000 * p))
            colour = GRADE_COLOURS[k] if k == grade else "#59606b"
            bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}")
            value.setText(f"{100 * p:.0f} %")


class StudyWindow(QWidget):
    """A reading station for one reader of a study.

    Parameters
    ----------
    session
        The reader's `ReaderSession` (the window closes it when closed).
    load_photo
        path -> (H, W, 3) uint8 (`retinaview.core.common.io.load_image` by default).
    clock
        Seconds from a monotonic clock (replaceable in tests).

    Signals
    -------
    caseShown(object)
        A new `Case` is on screen; when ``case.shows_model`` the window waits for `set_model_output`.
    answered(object, int, object, float)
        case, grade, confidence (or None), seconds: committed to the study file.
    finished()
        The reader has answered every case.
    noticeShown(str)
        A one-line message (an image that cannot be read, a study file that refuses the answer).
    """

    caseShown = Signal(object)
    answered = Signal(object, int, object, float)
    finished = Signal()
    noticeShown = Signal(str)

    def __init__(
        self,
        session: ReaderSession,
        load_photo: Callable[[object], np.ndarray] = load_image,
        clock: Callable[[], float] = time.monotonic,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"retinaview · reader study · reader {session.reader}")
        self.session = session
        self._load_photo = load_photo
        self._clock = clock
        self.case: Case | None = None
        self.photo_rgb: np.ndarray | None = None
        self._ready_at: float | None = None
        self.grade: int | None = None
        self.confidence: int | None = None

        self.progress = QLabel("")
        self.progress.setObjectName("panelTitle")
        self.photo = PhotoLabel()

        self.model_box = QGroupBox("Model")
        self.model_grade = QLabel("")
        self.model_grade.setObjectName("gradeBig")
        self.probabilities = ProbabilityRows()
        self.map_legend = QLabel("")
        self.map_legend.setWordWrap(True)
        self.map_legend.setObjectName("muted")
        box = QVBoxLayout(self.model_box)
        box.addWidget(self.model_grade)
        box.addWidget(self.probabilities)
        box.addWidget(self.map_legend)
        self.waiting = QLabel("Loading the model's output…")
        self.waiting.setObjectName("muted")

        self.grade_group = QButtonGroup(self)
        self.grade_buttons = self._buttons(self.grade_group, range(5), "Grade {} (key {})")
        self.grade_group.idClicked.connect(self.set_grade)
        self.confidence_group = QButtonGroup(self)
        self.confidence_buttons = self._buttons(
            self.confidence_group, range(1, 6), "Confidence {} of 5 (Ctrl+{})"
        )
        self.confidence_group.idClicked.connect(self.set_confidence)
        self.grade_name = QLabel("")
        self.submit = QPushButton("Submit  ⏎")
        self.submit.setToolTip("Record the grade and show the next case (Enter)")
        self.submit.clicked.connect(self.submit_answer)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("muted")

        side = QVBoxLayout()
        side.addWidget(self.progress)
        side.addWidget(self.model_box)
        side.addWidget(self.waiting)
        answer = QGroupBox("Your answer")
        form = QGridLayout(answer)
        form.addWidget(QLabel("Grade"), 0, 0)
        form.addLayout(self._row(self.grade_buttons), 0, 1)
        form.addWidget(self.grade_name, 1, 1)
        form.addWidget(QLabel("Confidence"), 2, 0)
        form.addLayout(self._row(self.confidence_buttons), 2, 1)
        form.setColumnStretch(1, 1)
        side.addWidget(answer)
        side.addWidget(self.submit)
        side.addWidget(self.status)
        side.addStretch(1)
        panel = QWidget()
        panel.setObjectName("panel")
        panel.setLayout(side)
        panel.setFixedWidth(330)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.photo, 1)
        layout.addWidget(panel)

    def _buttons(self, group: QButtonGroup, values, tip: str) -> list[QToolButton]:
        # Not exclusive: an exclusive group cannot show "nothing chosen" for the next case.
        group.setExclusive(False)
        out = []
        for v in values:
            b = QToolButton()
            b.setText(str(v))
            b.setCheckable(True)
            b.setToolTip(tip.format(v, v))
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            group.addButton(b, v)
            out.append(b)
        return out

    @staticmethod
    def _row(buttons) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        for b in buttons:
            row.addWidget(b)
        return row

    # ---------------------------------------------------------------------------------------------
    # Cases
    # ---------------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The case is complete on screen and may be answered."""
        return self.case is not None and self._ready_at is not None

    def next_case(self) -> Case | None:
        """Show the reader's next unanswered case (None and `finished` when all are done)."""
        self.case = self.session.next_case()
        self.grade = self.confidence = None
        self._ready_at = None
        self.photo_rgb = None
        # Nothing of the previous case's model output may remain, even in a hidden widget.
        self.model_box.hide()
        self.model_grade.setText("")
        self.probabilities.clear()
        self.map_legend.setText("")
        self.map_legend.hide()
        self.waiting.hide()
        self.status.setText("")
        if self.case is None:
            self.photo.set_rgb(None)
            self.photo.setText("All cases answered. Thank you.")
            done, total = self.session.progress()
            self.progress.setText(f"Done: {done} of {total}")
            self._refresh_answer()
            self.finished.emit()
            return None
        case = self.case
        done, total = self.session.progress()
        self.progress.setText(f"Case {done + 1} of {total}")
        try:
            self.photo_rgb = np.asarray(self._load_photo(case.path), dtype=np.uint8)
        except RetinaviewError as exc:
            self._notice(str(exc))
            self.photo.set_rgb(None)
            self.photo.setText(f"{case.file}: cannot be shown")
        else:
            self.photo.set_rgb(self.photo_rgb)
        if not case.shows_model and self.photo_rgb is not None:
            self._ready_at = self._clock()
        elif case.shows_model:
            self.waiting.show()
        self._refresh_answer()
        self.caseShown.emit(case)
        return case

    def set_model_output(
        self,
        case: Case,
        probs: Sequence[float],
        score: np.ndarray | None = None,
        fov: np.ndarray | None = None,
        to_photo: tuple[float, float, float, float] | None = None,
    ) -> None:
        """The model's output for ``case``: shown only as far as the case's arm allows (nothing in the
        unassisted arm; no map in the grade arm). Output of another case is ignored. ``score`` is the map
        of the predicted class; ``to_photo`` the engine's affine from its pixels to the photograph's
        (`ExplainResult.to_photo`); without it the map is taken to cover the whole photograph."""
        if self.case is None or case != self.case or not case.shows_model:
            return
        if self.photo_rgb is None:
            return
        grade = int(np.argmax(probs))
        self.model_grade.setText(f"{grade} · {GRADE_NAMES[grade]}")
        self.model_grade.setStyleSheet(f"color: {GRADE_COLOURS[grade]}")
        self.probabilities.set_probs(probs)
        if case.shows_map:
            if score is None:
                self._notice(f"{case.file}: the map could not be computed")
                return
            self.photo.set_rgb(
                map_over_photo(
                    self.photo_rgb,
                    score,
                    fov,
                    n=case.map_threshold,
                    mode="positive",
                    to_photo=to_photo,
                )
            )
            self.map_legend.setText(
                f"Map of the model's grade: green where the image pushes towards it, beyond "
                f"{case.map_threshold:g} standard deviations."
            )
            self.map_legend.show()
        else:
            self.map_legend.hide()
        self.model_box.show()
        self.waiting.hide()
        self._ready_at = self._clock()
        self._refresh_answer()

    # ---------------------------------------------------------------------------------------------
    # Answering
    # ---------------------------------------------------------------------------------------------

    def set_grade(self, grade: int) -> None:
        if self.ready:
            self.grade = grade
        self._refresh_answer()

    def set_confidence(self, confidence: int) -> None:
        if self.ready:
            self.confidence = confidence
        self._refresh_answer()

    def submit_answer(self) -> bool:
        """Record the answer (committed to the study file) and show the next case."""
        if not self.ready or self.case is None:
            return False
        if self.grade is None:
            self.status.setText("Press 0-4 to grade the image first.")
            return False
        if self.confidence is None:
            self.status.setText("Choose your confidence, 1-5 (Ctrl+1 … Ctrl+5).")
            return False
        seconds = self._clock() - self._ready_at
        case = self.case
        try:
            self.session.answer(case, self.grade, self.confidence, seconds=seconds)
        except RetinaviewError as exc:
            self._notice(str(exc))
            return False
        self.answered.emit(case, self.grade, self.confidence, seconds)
        self.next_case()
        return True

    def _refresh_answer(self) -> None:
        ready = self.ready
        for g, b in enumerate(self.grade_buttons):
            b.setEnabled(ready)
            b.setChecked(self.grade == g)
        for c, b in enumerate(self.confidence_buttons, start=1):
            b.setEnabled(ready)
            b.setChecked(self.confidence == c)
        self.submit.setEnabled(ready)
        if self.grade is None:
            self.grade_name.setText("")
        else:
            self.grade_name.setText(f"{self.grade} · {GRADE_NAMES[self.grade]}")
            self.grade_name.setStyleSheet(f"color: {GRADE_COLOURS[self.grade]}; font-weight: 600")

    def _notice(self, message: str) -> None:
        line = " ".join(message.split())
        self.status.setText(f"<span style='color:#ff8a7a'>{line}</span>")
        self.noticeShown.emit(line)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods == Qt.KeyboardModifier.NoModifier and Qt.Key.Key_0 <= key <= Qt.Key.Key_4:
            self.set_grade(key - Qt.Key.Key_0)
        elif mods == Qt.KeyboardModifier.ControlModifier and Qt.Key.Key_1 <= key <= Qt.Key.Key_5:
            self.set_confidence(key - Qt.Key.Key_0)
        elif mods == Qt.KeyboardModifier.NoModifier and key in _ENTER:
            self.submit_answer()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:
        self.session.close()
        super().closeEvent(event)
