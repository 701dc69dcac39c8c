"""A grading session over a folder: which image is current, the reviewer's draft of it, time spent on it,
whether the model's output may be shown yet, and the rule that a draft is committed before the screen moves.

The grading panel (`retinaview.ui.grading_panel`) is a thin Qt shell over this class; everything that decides
what happens to a grade lives here, so it is tested without a window. Qt-free and torch-free: the review store
(`retinaview.core.common.review_store`) does the storage.

Hide the AI (anchoring): in a review project the model's grade, probabilities and maps stay hidden for an
image until the reviewer's own grade of it is committed (`ReviewSession.ai_visible`). It is a setting, on by
default.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from retinaview.core.common.agreement import REFERABLE_GRADE
from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.review_store import (
    REASONS,
    GradeRecord,
    HistoryEntry,
    ReviewStore,
    ReviewStoreError,
)

__all__ = ["CommitOutcome", "Draft", "ReviewSession"]


@dataclass(frozen=True)
class Draft:
    """What the reviewer has entered for the current image, committed or not."""

    grade: int | None = None
    gradable: bool = True
    reason: str | None = None
    confidence: int | None = None
    note: str = ""

    @property
    def referable(self) -> bool:
        """Referable diabetic retinopathy: grade >= 2, or an image that cannot be graded."""
        return (not self.gradable) or (self.grade is not None and self.grade >= REFERABLE_GRADE)

    @property
    def problem(self) -> str | None:
        """Why this draft cannot be committed yet, in a few words, or None."""
        if self.gradable and self.grade is None:
            return "press 0-4 to grade the image first"
        if not self.gradable and self.reason not in REASONS:
            return "choose the reason the image cannot be graded"
        return None

    @classmethod
    def of(cls, record: GradeRecord | None) -> Draft:
        if record is None:
            return cls()
        return cls(record.grade, record.gradable, record.reason, record.confidence, record.note)


@dataclass(frozen=True)
class CommitOutcome:
    """The result of committing a draft: ``record`` when it is on disk; ``error`` (one line) when the store
    refused it and the record is kept pending in memory (`ReviewStore.pending`)."""

    record: GradeRecord | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ReviewSession:
    """One reviewer working through the images of a review project.

    Parameters
    ----------
    store
        The project's `ReviewStore`, with its reviewer name set.
    files
        The images in browsing order (paths; matched to records by file name and content digest).
    hide_ai
        Keep the model's output hidden for an image until the reviewer's grade of it is committed.
    model, model_checksum
        The model loaded while grading, written into every record.
    clock
        Seconds from a monotonic clock (replaceable in tests).
    """

    def __init__(
        self,
        store: ReviewStore,
        files: Sequence[str | Path],
        *,
        hide_ai: bool = True,
        model: str | None = None,
        model_checksum: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not store.reviewer:
            raise ReviewStoreError(f"{store.path}: no reviewer name set for this review project")
        self.store = store
        self.files = [Path(f) for f in files]
        self.hide_ai = hide_ai
        self.model = model
        self.model_checksum = model_checksum
        self._clock = clock
        self.index: int | None = None
        self.draft = Draft()
        self.saved = Draft()  # the current image's record as stored (or pending), for `dirty`
        self._shown_at = clock()
        self._spent: dict[str, float] = {}  # file name -> seconds spent on it and not yet committed
        self._digests: dict[str, str] = {}
        self._graded = self._read_graded()

    def _read_graded(self) -> set[str]:
        try:
            done = set(self.store.graded_files())
        except ReviewStoreError:
            done = set()
        return done | {p.file for p in self.store.pending if p.reviewer == self.store.reviewer}

    # ---------------------------------------------------------------------------------------------
    # Where we are
    # ---------------------------------------------------------------------------------------------

    @property
    def current(self) -> Path | None:
        return None if self.index is None else self.files[self.index]

    @property
    def dirty(self) -> bool:
        """Something entered for the current image that is not committed."""
        return self.index is not None and self.draft != self.saved

    def is_graded(self, file: str | Path) -> bool:
        """The reviewer has a record of the image (committed, or pending after a refusal)."""
        return Path(file).name in self._graded

    def ai_visible(self, file: str | Path | None = None) -> bool:
        """Whether the model's output of the image (default: the current one) may be shown."""
        target = self.current if file is None else Path(file)
        if target is None:
            return False
        return not self.hide_ai or self.is_graded(target)

    def resume_index(self) -> int | None:
        """The first image the reviewer has not graded; the first image when all are graded (None when
        there are no images)."""
        if not self.files:
            return None
        first = next((i for i, f in enumerate(self.files) if not self.is_graded(f)), None)
        return 0 if first is None else first

    def seconds_on_current(self) -> float:
        """Seconds spent on the current image and not yet committed (this visit and earlier ones)."""
        if self.current is None:
            return 0.0
        return self._spent.get(self.current.name, 0.0) + (self._clock() - self._shown_at)

    # ---------------------------------------------------------------------------------------------
    # Moving
    # ---------------------------------------------------------------------------------------------

    def start(self) -> int | None:
        """Show the image to resume at (`resume_index`); returns its index."""
        i = self.resume_index()
        if i is not None:
            self._show(i)
        return i

    def go_to(self, index: int) -> CommitOutcome | None:
        """Move to image ``index``, committing the current draft first when it is complete and changed.

        Returns None when the move happened with nothing to commit, the commit's outcome otherwise. The move
        does not happen when the draft cannot be committed (`Draft.problem`: outcome with that error, the
        draft kept) or when the store refused it (outcome with the error; the record is pending in memory,
        so a second `go_to` moves on).
        """
        if not 0 <= index < len(self.files):
            raise IndexError(f"image index {index} outside 0..{len(self.files) - 1}")
        outcome = None
        if self.dirty:
            outcome = self.commit()
            if not outcome.ok:
                return outcome
        self._show(index)
        return outcome

    def next_index(self) -> int | None:
        """The image after the current one, or None at the end."""
        if self.index is None:
            return self.resume_index()
        return self.index + 1 if self.index + 1 < len(self.files) else None

    def _leave(self) -> None:
        if self.current is not None:
            name = self.current.name
            self._spent[name] = self._spent.get(name, 0.0) + (self._clock() - self._shown_at)

    def _show(self, index: int) -> None:
        self._leave()
        self.index = index
        self._shown_at = self._clock()
        record = self._record_of(self.files[index])
        self.saved = Draft.of(record)
        self.draft = self.saved

    def _digest(self, path: Path) -> str | None:
        name = path.name
        if name not in self._digests:
            from retinaview.core.common.io import file_digest

            try:
                self._digests[name] = file_digest(path)
            except RetinaviewError:
                return None
        return self._digests[name]

    def _record_of(self, path: Path) -> GradeRecord | None:
        who = self.store.reviewer
        pending = [p for p in self.store.pending if p.file == path.name and p.reviewer == who]
        if pending:
            return pending[-1]
        try:
            return self.store.get(path, digest=self._digest(path))
        except ReviewStoreError:
            return None

    # ---------------------------------------------------------------------------------------------
    # Editing and committing
    # ---------------------------------------------------------------------------------------------

    def edit(self, **fields) -> Draft:
        """Change fields of the current draft (grade, gradable, reason, confidence, note); marking an
        image gradable drops the reason. Returns the new draft."""
        if self.current is None:
            raise RetinaviewError("no image to grade")
        draft = replace(self.draft, **fields)
        if draft.gradable and draft.reason is not None:
            draft = replace(draft, reason=None)
        self.draft = draft
        return draft

    def commit(self) -> CommitOutcome:
        """Write the current draft to the store (on disk when it returns with ``ok``)."""
        if self.current is None:
            return CommitOutcome(error="no image to grade")
        problem = self.draft.problem
        if problem:
            return CommitOutcome(error=problem)
        path = self.current
        seconds = self.seconds_on_current()
        d = self.draft
        try:
            record = self.store.grade(
                path,
                d.grade,
                digest=self._digest(path),
                gradable=d.gradable,
                reason=None if d.gradable else d.reason,
                confidence=d.confidence,
                note=d.note,
                seconds=round(seconds, 3),
                model=self.model,
                model_checksum=self.model_checksum,
            )
        except RetinaviewError as exc:
            if self.store.pending and self.store.pending[-1].file == path.name:
                # Kept in memory: nothing entered is lost, and the screen may move on.
                self._graded.add(path.name)
                self.saved = self.draft
                self._restart_clock()
            return CommitOutcome(error=str(exc))
        self._graded.add(path.name)
        self.saved = self.draft
        self._restart_clock()
        return CommitOutcome(record=record)

    def _restart_clock(self) -> None:
        if self.current is not None:
            self._spent.pop(self.current.name, None)
        self._shown_at = self._clock()

    def undo(self) -> HistoryEntry | None:
        """Undo the reviewer's last committed change (on any image). The current draft is reloaded when
        the change was on the current image. Raises `ReviewStoreError` when the store refuses."""
        entry = self.store.undo()
        if entry is None:
            return None
        name = entry.file
        self._graded = self._read_graded()
        if self.current is not None and self.current.name == name:
            self.saved = Draft.of(self._record_of(self.current))
            self.draft = self.saved
        return entry

    def index_of(self, file: str) -> int | None:
        """Index of a file name in the session's images, or None."""
        return next((i for i, f in enumerate(self.files) if f.name == file), None)

    def retry_pending(self) -> int:
        """Commit what the store kept pending; returns how many were committed."""
        done = self.store.retry_pending()
        self._graded = self._read_graded()
        return done
