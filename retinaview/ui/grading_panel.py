"""The reviewer's grading panel: grade 0-4 by keys or buttons, gradable or not with a reason, referable
shown as derived, confidence 1-5, a note; Enter commits and asks to move on; Ctrl+Z undoes the last change.

A thin Qt shell over `retinaview.core.common.review_session.ReviewSession`, which decides what is committed and
when the model's output may be shown. The panel owns no navigation: it emits `advanceRequested` after a
commit by Enter, and the window that owns the browser asks `request_move` before it shows another image.

Keys (while the panel or one of its children has focus, or forwarded by the window through `handle_key`):
0-4 grade, U ungradable on / off, Ctrl+1..5 confidence, Enter commit and move on, Ctrl+Z undo.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from retinaview.core.common.review_session import CommitOutcome, Draft, ReviewSession
from retinaview.core.common.review_store import REASONS, ReviewStore, ReviewStoreError
from retinaview.ui.settings import app_settings
from retinaview.ui.theme import GRADE_COLOURS, MUTED

GRADE_NAMES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")
_GRADE_KEYS = {
    Qt.Key.Key_0: 0,
    Qt.Key.Key_1: 1,
    Qt.Key.Key_2: 2,
    Qt.Key.Key_3: 3,
    Qt.Key.Key_4: 4,
}
_CONFIDENCE_KEYS = {
    Qt.Key.Key_1: 1,
    Qt.Key.Key_2: 2,
    Qt.Key.Key_3: 3,
    Qt.Key.Key_4: 4,
    Qt.Key.Key_5: 5,
}
_ENTER = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


HIDE_AI_KEY = "review/hide_ai"


def read_hide_ai() -> bool:
    """The "hide the model until I have graded" setting; on unless the reviewer turned it off."""
    value = app_settings().value(HIDE_AI_KEY, True)
    return value not in (False, "false", "0", 0)


def write_hide_ai(on: bool) -> None:
    app_settings().setValue(HIDE_AI_KEY, bool(on))


def ask_reviewer_name(parent: QWidget | None) -> str | None:
    """Ask for the reviewer's name once per project (a dialog); None when cancelled."""
    name, ok = QInputDialog.getText(
        parent,
        "Reviewer",
        "Your name, recorded with every grade of this review project:",
    )
    name = " ".join(name.split())
    return name if ok and name else None


def ask_save_path(parent: QWidget | None) -> str | None:
    """Ask where to save grades the database refused; None when cancelled."""
    path, _ = QFileDialog.getSaveFileName(
        parent, "Save unsaved grades elsewhere", "retinaview-unsaved-grades.csv", "CSV (*.csv)"
    )
    return path or None


class GradingPanel(QWidget):
    """Grade the current image of a `ReviewSession`.

    Signals
    -------
    committed(object)
        A `GradeRecord` is on disk.
    advanceRequested()
        Enter committed the grade: the window should show the next image (through `request_move`).
    aiVisibilityChanged(bool)
        Whether the window may show the model's grade, probabilities and maps of the current image.
    undone(int)
        The last change was undone; the index of its image (-1 when not among the session's images).
    noticeShown(str)
        A one-line message for the reviewer (also shown in the panel).
    """

    committed = Signal(object)
    advanceRequested = Signal()
    aiVisibilityChanged = Signal(bool)
    undone = Signal(int)
    noticeShown = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gradingPanel")
        self.session: ReviewSession | None = None
        self._owns_store = False  # opened by `open_folder`, closed by `close_session`
        self.ask_reviewer: Callable[[QWidget | None], str | None] = ask_reviewer_name
        self.ask_save_path: Callable[[QWidget | None], str | None] = ask_save_path
        self._model_text = ""
        self._updating = False
        self._last_ai: bool | None = None

        self.title = QLabel("Your grade")
        self.title.setObjectName("panelTitle")
        self.reviewer_label = QLabel("")
        self.reviewer_label.setObjectName("muted")
        self.reviewer_label.setAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        )
        self.file_label = QLabel("No image")
        self.file_label.setObjectName("muted")
        self.quality_label = QLabel("")
        self.quality_label.setWordWrap(True)
        self.quality_label.hide()

        self.grade_group = QButtonGroup(self)
        self.grade_group.setExclusive(False)
        self.grade_buttons: list[QToolButton] = []
        grades = QHBoxLayout()
        grades.setSpacing(4)
        for g in range(5):
            b = QToolButton()
            b.setText(str(g))
            b.setCheckable(True)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.setToolTip(f"{g}: {GRADE_NAMES[g]} (key {g})")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setMinimumWidth(34)
            colour = GRADE_COLOURS[g]
            # Set once: a style sheet change re-polishes the widget, too slow for every key press.
            b.setStyleSheet(
                f"QToolButton:checked {{ background: {colour}; border-color: {colour}; "
                "color: black; font-weight: 700; }"
            )
            self.grade_group.addButton(b, g)
            self.grade_buttons.append(b)
            grades.addWidget(b)
        self.grade_group.idClicked.connect(self._grade_clicked)
        self.grade_name = QLabel("–")

        self.gradable = QCheckBox("Gradable")
        self.gradable.setChecked(True)
        self.gradable.setToolTip("Uncheck when the photograph cannot be graded (key U)")
        self.gradable.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.gradable.toggled.connect(self._gradable_toggled)
        self.reason = QComboBox()
        self.reason.addItem("reason…", None)
        for r in REASONS:
            self.reason.addItem(r, r)
        self.reason.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.reason.currentIndexChanged.connect(self._reason_changed)
        self.referable = QLabel("Referable: –")
        self.referable.setToolTip("Derived: grade 2 or more, or an ungradable image")

        self.confidence_group = QButtonGroup(self)
        self.confidence_group.setExclusive(False)
        self.confidence_buttons: list[QToolButton] = []
        conf = QHBoxLayout()
        conf.setSpacing(4)
        for c in range(1, 6):
            b = QToolButton()
            b.setText(str(c))
            b.setCheckable(True)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.setToolTip(f"Confidence {c} of 5 (Ctrl+{c})")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setMinimumWidth(30)
            self.confidence_group.addButton(b, c)
            self.confidence_buttons.append(b)
            conf.addWidget(b)
        self.confidence_group.idClicked.connect(self._confidence_clicked)

        self.note = QLineEdit()
        self.note.setPlaceholderText("Note (Enter commits)")
        self.note.textEdited.connect(self._note_edited)

        self.commit_button = QPushButton("Commit  ⏎")
        self.commit_button.setToolTip("Save the grade and go to the next image (Enter)")
        self.commit_button.clicked.connect(self.commit_and_advance)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last saved change (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)

        self.hide_ai = QCheckBox("Hide the model until I have graded")
        self.hide_ai.setToolTip(
            "The model's grade, probabilities and maps of an image stay hidden until your grade of it "
            "is saved (avoids anchoring on the model)"
        )
        self.hide_ai.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hide_ai.setChecked(read_hide_ai())
        self.hide_ai.toggled.connect(self._hide_ai_toggled)

        self.status = QLabel("")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.model_label = QLabel("")
        self.model_label.setWordWrap(True)
        self.notice = QLabel("")
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self.save_elsewhere = QPushButton("Save elsewhere…")
        self.save_elsewhere.setToolTip("Write the grades the database refused to a CSV file")
        self.save_elsewhere.clicked.connect(self.save_pending_elsewhere)
        self.save_elsewhere.hide()

        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.reviewer_label)
        form = QGridLayout()
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(6)
        form.addWidget(self._muted("Grade"), 0, 0)
        form.addLayout(grades, 0, 1)
        form.addWidget(self.grade_name, 1, 1)
        form.addWidget(self.gradable, 2, 0)
        form.addWidget(self.reason, 2, 1)
        form.addWidget(self._muted("Confidence"), 3, 0)
        form.addLayout(conf, 3, 1)
        form.addWidget(self._muted("Note"), 4, 0)
        form.addWidget(self.note, 4, 1)
        form.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.commit_button, 1)
        buttons.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addLayout(head)
        layout.addWidget(self.file_label)
        layout.addWidget(self.quality_label)
        layout.addLayout(form)
        layout.addWidget(self.referable)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.model_label)
        layout.addWidget(self.hide_ai)
        layout.addWidget(self.notice)
        layout.addWidget(self.save_elsewhere)
        layout.addStretch(1)
        self._refresh()

    @staticmethod
    def _muted(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("muted")
        return label

    # ---------------------------------------------------------------------------------------------
    # Project and session
    # ---------------------------------------------------------------------------------------------

    def ensure_reviewer(self, store: ReviewStore) -> bool:
        """Make sure the project has a reviewer name, asking once (the name is stored in the project).
        False when the reviewer declined or the name cannot be stored."""
        if store.reviewer:
            return True
        name = self.ask_reviewer(self)
        if not name:
            return False
        try:
            store.reviewer = name
        except ReviewStoreError as exc:
            # The name stays in memory: grades are still kept (pending) and can be saved elsewhere.
            self.show_notice(str(exc), offer_save=False)
        return bool(store.reviewer)

    def open_folder(
        self,
        folder: str | Path,
        files: Sequence[str | Path],
        model: str | None = None,
        model_checksum: str | None = None,
    ) -> int | None:
        """Open (or create) the review project of an image folder and grade its ``files`` (in browsing
        order): asks the reviewer's name the first time, and returns the index to resume at (the first
        ungraded image), or None when the project cannot be opened (a one-line notice says why) or has no
        images. The panel closes the project in `close_session`."""
        self.close_session()
        try:
            store = ReviewStore.for_folder(folder)
        except ReviewStoreError as exc:
            self.show_notice(f"Review project not opened: {exc}", offer_save=False)
            return None
        if not self.ensure_reviewer(store):
            store.close()
            self.show_notice(
                "Review project not opened: a reviewer name is needed", offer_save=False
            )
            return None
        session = ReviewSession(
            store, files, hide_ai=read_hide_ai(), model=model, model_checksum=model_checksum
        )
        self._owns_store = True
        return self.open_session(session)

    def open_session(self, session: ReviewSession, start: bool = True) -> int | None:
        """Grade with ``session``; with ``start`` show the image to resume at. Returns the current index.
        The session's hide-the-model setting is shown in (and then changed by) the panel's check box."""
        self.session = session
        self._updating = True
        self.hide_ai.setChecked(session.hide_ai)
        self._updating = False
        self.reviewer_label.setText(session.store.reviewer or "")
        self.clear_notice()
        self._last_ai = None  # a new session always tells the window what it may show
        index = session.start() if start else session.index
        self._refresh()
        return index

    def close_session(self) -> CommitOutcome | None:
        """Commit a changed draft and let go of the session; a project opened by `open_folder` is closed
        (after offering to save grades the database refused), one given to `open_session` is not."""
        outcome = None
        if self.session is not None and self.session.dirty:
            outcome = self._commit()
        if self.session is not None and self._owns_store:
            if self.session.store.pending:
                # Grades the database refused are still only in memory: offer them once more.
                self.save_pending_elsewhere()
            self.session.store.close()
        self._owns_store = False
        self.session = None
        self._refresh()
        return outcome

    def set_model_output(self, text: str) -> None:
        """One line of the model's opinion of the current image (grade, probability), shown only when
        `ReviewSession.ai_visible` allows."""
        self._model_text = text
        self._refresh()

    def set_quality(self, label: str | None) -> None:
        """The model-free quality gate's verdict of the current image (``gradable`` or ``ungradable:
        <reason>``), shown whatever the hide-the-model setting: it is not the model's opinion."""
        if not label:
            self.quality_label.hide()
            self.quality_label.setText("")
            return
        colour = "#ff8a7a" if label.startswith("ungradable") else MUTED
        self.quality_label.setText(f"<span style='color:{colour}'>Quality gate: {label}</span>")
        self.quality_label.show()

    # ---------------------------------------------------------------------------------------------
    # Moving
    # ---------------------------------------------------------------------------------------------

    def request_move(self, index: int) -> bool:
        """Called by the window before it shows image ``index``: commits a changed draft first. False (and
        a notice) when the window must stay: the draft is incomplete, or the store refused it (then the
        record is kept pending and a second request moves on)."""
        if self.session is None:
            return True
        if self.session.index == index:
            return True
        outcome = self.session.go_to(index)
        if outcome is not None:
            self._after_commit(outcome)
        if self.session.index == index:
            self.set_quality(None)
        self._model_text = ""
        self._refresh()
        return self.session.index == index

    # ---------------------------------------------------------------------------------------------
    # Editing
    # ---------------------------------------------------------------------------------------------

    def set_grade(self, grade: int) -> None:
        if self._edit(grade=grade, gradable=True):
            self.status.setText(f"Grade {grade} entered: Enter saves it")

    def set_confidence(self, confidence: int) -> None:
        current = self.session.draft.confidence if self.session else None
        self._edit(confidence=None if current == confidence else confidence)

    def set_gradable(self, gradable: bool) -> None:
        self._edit(gradable=gradable)

    def _edit(self, **fields) -> bool:
        if self.session is None or self.session.current is None:
            return False
        self.session.edit(**fields)
        self._refresh()
        return True

    def _grade_clicked(self, g: int) -> None:
        self.set_grade(g)

    def _confidence_clicked(self, c: int) -> None:
        self.set_confidence(c)

    def _gradable_toggled(self, on: bool) -> None:
        if not self._updating:
            self.set_gradable(on)

    def _reason_changed(self, _i: int) -> None:
        if not self._updating:
            self._edit(reason=self.reason.currentData(), gradable=False)

    def _hide_ai_toggled(self, on: bool) -> None:
        if self._updating:
            return
        write_hide_ai(on)
        if self.session is not None:
            self.session.hide_ai = on
        self._refresh_state()

    def _note_edited(self, text: str) -> None:
        if self.session is not None and self.session.current is not None:
            self.session.edit(note=text)
            self._refresh_state()

    # ---------------------------------------------------------------------------------------------
    # Committing and undo
    # ---------------------------------------------------------------------------------------------

    def commit(self) -> CommitOutcome | None:
        """Commit the draft of the current image (nothing to do when it is unchanged)."""
        if self.session is None or self.session.current is None:
            return None
        if not self.session.dirty:
            return None
        outcome = self._commit()
        self._refresh()
        return outcome

    def commit_and_advance(self) -> None:
        """Enter: commit (when changed) and ask the window for the next image."""
        if self.session is None or self.session.current is None:
            return
        if self.session.dirty:
            outcome = self.commit()
            if outcome is None or not outcome.ok:
                return
        elif not self.session.is_graded(self.session.current):
            problem = self.session.draft.problem
            self.status.setText(problem or "")
            return
        self.advanceRequested.emit()

    def _commit(self) -> CommitOutcome:
        assert self.session is not None
        outcome = self.session.commit()
        self._after_commit(outcome)
        return outcome

    def _after_commit(self, outcome: CommitOutcome) -> None:
        if outcome.ok:
            if outcome.record is not None:
                r = outcome.record
                self.status.setText(
                    f"Saved {r.file}: grade {r.grade if r.gradable else 'ungradable'}"
                )
                self.committed.emit(r)
            return
        assert self.session is not None
        pending = any(p.file == self.session.current.name for p in self.session.store.pending)
        if pending:
            self.show_notice(
                f"Not saved: {outcome.error}. The grade is kept in memory; save it elsewhere.",
                offer_save=True,
            )
        else:
            self.status.setText(outcome.error or "")

    def undo(self) -> None:
        """Undo the reviewer's last saved change."""
        if self.session is None:
            return
        try:
            entry = self.session.undo()
        except ReviewStoreError as exc:
            self.show_notice(str(exc), offer_save=False)
            return
        if entry is None:
            self.status.setText("Nothing to undo")
        else:
            self.status.setText(f"Undid the last change of {entry.file}")
            index = self.session.index_of(entry.file)
            self.undone.emit(-1 if index is None else index)
        self._refresh()

    # ---------------------------------------------------------------------------------------------
    # Notices
    # ---------------------------------------------------------------------------------------------

    def show_notice(self, message: str, offer_save: bool) -> None:
        line = " ".join(message.split())
        # A narrow panel cannot show a full path: the file name here, the whole line in the tooltip.
        short = " ".join(
            Path(w.rstrip(":")).name + (":" if w.endswith(":") else "") if "/" in w else w
            for w in line.split()
        )
        self.notice.setText(short)
        self.notice.setToolTip(line)
        self.notice.show()
        self.save_elsewhere.setVisible(offer_save)
        self.noticeShown.emit(line)

    def clear_notice(self) -> None:
        self.notice.hide()
        self.notice.setText("")
        self.save_elsewhere.hide()

    def save_pending_elsewhere(self) -> int:
        """Offer a file for the grades the database refused and write them there; returns how many."""
        if self.session is None or not self.session.store.pending:
            return 0
        path = self.ask_save_path(self)
        if not path:
            return 0
        try:
            n = self.session.store.save_pending_to(path)
        except ReviewStoreError as exc:
            self.show_notice(str(exc), offer_save=True)
            return 0
        self.clear_notice()
        self.status.setText(f"{n} unsaved grade(s) written to {Path(path).name}")
        return n

    # ---------------------------------------------------------------------------------------------
    # Keys
    # ---------------------------------------------------------------------------------------------

    def handle_key(self, event: QKeyEvent) -> bool:
        """Act on a grading key (the window forwards keys here in review mode); True when used."""
        key = event.key()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ctrl = Qt.KeyboardModifier.ControlModifier
        if mods == ctrl and key == Qt.Key.Key_Z:
            self.undo()
            return True
        if mods == ctrl and key in _CONFIDENCE_KEYS:
            self.set_confidence(_CONFIDENCE_KEYS[Qt.Key(key)])
            return True
        if mods != Qt.KeyboardModifier.NoModifier:
            return False
        if key in _GRADE_KEYS:
            self.set_grade(_GRADE_KEYS[Qt.Key(key)])
            return True
        if key == Qt.Key.Key_U:
            if self.session is not None and self.session.current is not None:
                self.set_gradable(not self.session.draft.gradable)
            return True
        if key in _ENTER:
            # Also Enter in the note field: the line edit passes the key on to the panel.
            self.commit_and_advance()
            return True
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.handle_key(event):
            super().keyPressEvent(event)

    # ---------------------------------------------------------------------------------------------
    # Drawing the state
    # ---------------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        s = self.session
        draft = s.draft if s is not None and s.current is not None else Draft()
        active = s is not None and s.current is not None
        self._updating = True
        try:
            for g, b in enumerate(self.grade_buttons):
                b.setEnabled(active)
                b.setChecked(draft.grade == g)
            for c, b in enumerate(self.confidence_buttons, start=1):
                b.setEnabled(active)
                b.setChecked(draft.confidence == c)
            self.gradable.setEnabled(active)
            self.gradable.setChecked(draft.gradable)
            self.reason.setEnabled(active and not draft.gradable)
            self.reason.setCurrentIndex(max(0, self.reason.findData(draft.reason)))
            if self.note.text() != draft.note:
                self.note.setText(draft.note)
            self.note.setEnabled(active)
            self.commit_button.setEnabled(active)
            self.undo_button.setEnabled(s is not None)
        finally:
            self._updating = False
        if draft.grade is None:
            text = "not graded" if draft.gradable else "no grade"
            self.grade_name.setText(f"<span style='color:{MUTED}'>{text}</span>")
        else:
            colour = GRADE_COLOURS[draft.grade]
            self.grade_name.setText(
                f"<span style='color:{colour}; font-weight:600'>"
                f"{draft.grade} · {GRADE_NAMES[draft.grade]}</span>"
            )
        self.file_label.setText(s.current.name if active else "No image")
        self._refresh_state()

    def _refresh_state(self) -> None:
        s = self.session
        active = s is not None and s.current is not None
        draft = s.draft if active else Draft()
        if not active or (draft.grade is None and draft.gradable):
            self.referable.setText("Referable: –")
        else:
            self.referable.setText(f"Referable: {'yes' if draft.referable else 'no'}")
        if active and s.dirty:
            self.title.setText("Your grade (not saved)")
        else:
            self.title.setText("Your grade")
        visible = bool(active and s.ai_visible())
        if not active:
            self.model_label.setText("")
        elif visible:
            self.model_label.setText(f"Model: {self._model_text}" if self._model_text else "")
        else:
            self.model_label.setText(
                f"<span style='color:{MUTED}'>Model's grade hidden until you save yours</span>"
            )
        if visible != self._last_ai:
            self._last_ai = visible
            self.aiVisibilityChanged.emit(visible)

    @property
    def ai_visible(self) -> bool:
        """Whether the model's output of the current image may be shown now."""
        s = self.session
        return bool(s is not None and s.current is not None and s.ai_visible())
