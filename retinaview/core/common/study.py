"""Reader study after Sayres et al. (2019, Ophthalmology): readers grade every image once, each image under
one assistance arm (no assistance, the model's grades, the grades plus a heatmap), assigned at random but
balanced, then accuracy, kappa, referable sensitivity and specificity and time are compared per arm.

A study is one SQLite file. `create_study` draws the design: the images in a seeded random order, and for
reader ``r`` the image at rank ``i`` gets arm ``(i + r) mod K`` (a cyclic Latin square), so every reader
grades each arm on the same number of images (within one) and, with a multiple of K readers, every image is
seen under every arm equally often; each reader then gets a seeded random presentation order.

`ReaderSession` is all a reading station sees: that reader's next case and its arm, nothing of other readers'
answers, and no way to pick an arm. `summarize` compares arms against reference labels (Wilson intervals for
proportions, bootstrap for kappa). Standard library + numpy only: the desktop app's study mode uses it.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from retinaview.core.common.agreement import agreement
from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.io import file_digest, list_images
from retinaview.core.common.labels import read_label_rows

__all__ = [
    "ARMS",
    "Case",
    "ReaderSession",
    "StudyError",
    "create_study",
    "study_info",
    "summarize",
]

# What each arm shows: nothing of the model; its grade and probabilities; those plus the map of the
# predicted class at a fixed threshold.
ARMS = ("unassisted", "grade", "grade+map")
SCHEMA_VERSION = 1


class StudyError(RetinaviewError):
    """A study file or a study action that cannot be used: one line."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _connect(path: Path, create: bool = False) -> sqlite3.Connection:
    if not create and not path.is_file():
        raise StudyError(f"{path}: no such study file")
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=2.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        raise StudyError(f"{path}: cannot open the study ({exc})") from None
    if not create:
        try:
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except sqlite3.Error:
            conn.close()
            raise StudyError(f"{path}: not a retinaview study file") from None
        if version != SCHEMA_VERSION:
            conn.close()
            raise StudyError(
                f"{path}: study schema {version}, this retinaview reads {SCHEMA_VERSION}"
            )
    return conn


def create_study(
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    readers: int,
    arms: tuple[str, ...] = ARMS,
    seed: int = 0,
    map_threshold: float = 2.0,
) -> Path:
    """Draw a balanced randomised design for ``readers`` readers over the images of a folder and write it
    to a new study file ``out``. See the module docstring for the design. ``map_threshold`` (n sigma) is
    the fixed threshold of the heatmap in the ``grade+map`` arm, the same for every reader and image."""
    out = Path(out)
    arms = tuple(arms)
    if not (math.isfinite(map_threshold) and map_threshold >= 0):
        raise StudyError(
            f"map threshold must be a number of standard deviations >= 0, not {map_threshold}"
        )
    if readers < 1:
        raise StudyError(f"readers must be at least 1, not {readers}")
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms or len(set(arms)) != len(arms):
        raise StudyError(
            f"arms must be distinct names among {', '.join(ARMS)}, not {','.join(arms) or 'none'}"
        )
    files = list_images(images)
    if not files:
        raise StudyError(f"{images}: no images in the folder")
    if out.exists():
        raise StudyError(f"{out}: already exists (a study is drawn once; choose another name)")
    digests = [file_digest(f) for f in files]
    rng = np.random.default_rng(seed)
    rank = rng.permutation(len(files))  # rank[i]: position of image i in the random order
    k = len(arms)
    rows = []
    for r in range(readers):
        order = rng.permutation(len(files))
        for pos, i in enumerate(order):
            arm = arms[(int(rank[i]) + r) % k]
            rows.append((r + 1, pos, files[i].name, digests[i], arm))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"{out.parent}: cannot create folder ({exc.strerror or exc})") from None
    conn = _connect(out, create=True)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT)")
        conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION, _now()))
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = {
            "images": str(Path(images).resolve()),
            "readers": str(readers),
            "arms": ",".join(arms),
            "seed": str(seed),
            "map_threshold": repr(float(map_threshold)),
            "created": _now(),
        }
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.execute(
            """CREATE TABLE cases (reader INTEGER NOT NULL, position INTEGER NOT NULL,
            file TEXT NOT NULL, digest TEXT NOT NULL, arm TEXT NOT NULL,
            shown TEXT, grade INTEGER CHECK (grade IS NULL OR grade BETWEEN 0 AND 4),
            confidence INTEGER CHECK (confidence IS NULL OR confidence BETWEEN 1 AND 5),
            seconds REAL, answered TEXT, PRIMARY KEY (reader, position), UNIQUE (reader, file))"""
        )
        conn.executemany(
            "INSERT INTO cases (reader, position, file, digest, arm) VALUES (?, ?, ?, ?, ?)", rows
        )
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StudyError(f"{out}: cannot write the study ({exc})") from None
    finally:
        conn.close()
    return out


def study_info(path: str | os.PathLike[str]) -> dict:
    """The study's design: images folder, readers, arms, seed, and answered / total cases."""
    conn = _connect(Path(path))
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        total, answered = conn.execute("SELECT count(*), count(answered) FROM cases").fetchone()
    finally:
        conn.close()
    return {
        "images": meta["images"],
        "readers": int(meta["readers"]),
        "arms": meta["arms"].split(","),
        "seed": int(meta["seed"]),
        "map_threshold": float(meta["map_threshold"]),
        "cases": int(total),
        "answered": int(answered),
    }


@dataclass(frozen=True)
class Case:
    """The next image for a reader and the arm it must be shown under."""

    reader: int
    position: int  # 0-based rank in the reader's presentation order
    total: int  # cases of this reader
    file: str  # file name in the study's image folder
    path: Path
    digest: str
    arm: str
    map_threshold: float  # n sigma of the heatmap in the grade+map arm

    @property
    def shows_model(self) -> bool:
        """The model's grade and probabilities may be shown (arms grade and grade+map)."""
        return self.arm != "unassisted"

    @property
    def shows_map(self) -> bool:
        """The map of the predicted class, at `map_threshold`, may be shown (arm grade+map)."""
        return self.arm == "grade+map"


class ReaderSession:
    """One reader's view of a study: the next case, and the answer to it; nothing else.

    Time to grade is measured from the moment `next_case` hands the case out to `answer` (monotonic clock),
    unless the caller passes the seconds it measured itself (from the image on screen to the key press).
    """

    def __init__(self, path: str | os.PathLike[str], reader: int) -> None:
        self.path = Path(path)
        self._conn = _connect(self.path)
        meta = dict(self._conn.execute("SELECT key, value FROM meta"))
        self.readers = int(meta["readers"])
        self.folder = Path(meta["images"])
        self.map_threshold = float(meta["map_threshold"])
        if not 1 <= reader <= self.readers:
            self.close()
            raise StudyError(f"{self.path}: reader must be 1-{self.readers}, not {reader}")
        self.reader = int(reader)
        self._shown: tuple[int, float] | None = None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ReaderSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def progress(self) -> tuple[int, int]:
        """(answered, total) for this reader."""
        total, done = self._conn.execute(
            "SELECT count(*), count(answered) FROM cases WHERE reader = ?", (self.reader,)
        ).fetchone()
        return int(done), int(total)

    def next_case(self) -> Case | None:
        """The reader's first unanswered case in presentation order, or None when all are done."""
        row = self._conn.execute(
            "SELECT position, file, digest, arm FROM cases WHERE reader = ? AND answered IS NULL "
            "ORDER BY position LIMIT 1",
            (self.reader,),
        ).fetchone()
        if row is None:
            return None
        pos, file, digest, arm = row
        self._conn.execute(
            "UPDATE cases SET shown = coalesce(shown, ?) WHERE reader = ? AND position = ?",
            (_now(), self.reader, pos),
        )
        self._shown = (int(pos), time.monotonic())
        return Case(
            reader=self.reader,
            position=int(pos),
            total=self.progress()[1],
            file=file,
            path=self.folder / file,
            digest=digest,
            arm=arm,
            map_threshold=self.map_threshold,
        )

    def answer(
        self, case: Case, grade: int, confidence: int | None = None, seconds: float | None = None
    ) -> None:
        """Record the reader's grade of the current case; committed before it returns. Only the case
        `next_case` handed out can be answered, once."""
        if case.reader != self.reader:
            raise StudyError(
                f"case of reader {case.reader} answered in reader {self.reader}'s session"
            )
        current = self._conn.execute(
            "SELECT position, arm FROM cases WHERE reader = ? AND answered IS NULL "
            "ORDER BY position LIMIT 1",
            (self.reader,),
        ).fetchone()
        if current is None or (int(current[0]), current[1]) != (case.position, case.arm):
            raise StudyError(f"{case.file}: not this reader's current case")
        if isinstance(grade, bool) or grade not in range(5):
            raise StudyError(f"grade must be 0-4, not {grade!r}")
        if confidence is not None and confidence not in range(1, 6):
            raise StudyError(f"confidence must be 1-5, not {confidence!r}")
        if seconds is None:
            if self._shown is None or self._shown[0] != case.position:
                raise StudyError(f"{case.file}: no time measured (case not shown in this session)")
            seconds = time.monotonic() - self._shown[1]
        try:
            self._conn.execute(
                "UPDATE cases SET grade = ?, confidence = ?, seconds = ?, answered = ? "
                "WHERE reader = ? AND position = ?",
                (int(grade), confidence, float(seconds), _now(), self.reader, case.position),
            )
        except sqlite3.Error as exc:
            raise StudyError(f"{self.path}: cannot record the answer ({exc})") from None
        self._shown = None


SUMMARY_COLUMNS = (
    "group",
    "arm",
    "reader",
    "n",
    "accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "qwk",
    "qwk_lo",
    "qwk_hi",
    "sensitivity",
    "sensitivity_lo",
    "sensitivity_hi",
    "specificity",
    "specificity_lo",
    "specificity_hi",
    "seconds_mean",
    "seconds_median",
)


def _reference(labels_csv: str | os.PathLike[str]) -> dict[str, int]:
    return {r.image: r.grade for r in read_label_rows(labels_csv)}


def summarize(
    path: str | os.PathLike[str],
    reference_csv: str | os.PathLike[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """Per arm, and per reader and arm: accuracy, QWK, referable (grade >= 2) sensitivity and
    specificity with 95 % intervals, and seconds per image, on the answered cases with a reference label
    (matched by file name or name without extension). Rows with the columns of `SUMMARY_COLUMNS`."""
    ref = _reference(reference_csv)
    conn = _connect(Path(path))
    try:
        arms = dict(conn.execute("SELECT key, value FROM meta"))["arms"].split(",")
        rows = conn.execute(
            "SELECT reader, file, arm, grade, seconds FROM cases WHERE answered IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    data = []
    missing = set()
    for reader, file, arm, grade, seconds in rows:
        t = ref.get(file, ref.get(Path(file).stem))
        if t is None:
            missing.add(file)
            continue
        data.append((int(reader), arm, int(t), int(grade), float(seconds)))
    if not data:
        raise StudyError(
            f"{reference_csv}: no answered case has a reference label"
            + (f" (e.g. {sorted(missing)[0]})" if missing else "")
        )
    out = []
    groups: list[tuple[str, str, int | None]] = [("arm", a, None) for a in arms]
    for r in sorted({d[0] for d in data}):
        groups += [("reader", a, r) for a in arms]
    for group, arm, reader in groups:
        sel = [d for d in data if d[1] == arm and (reader is None or d[0] == reader)]
        if not sel:
            continue
        truth = [d[2] for d in sel]
        graded = [d[3] for d in sel]
        a = agreement(truth, graded, n_boot=n_boot, seed=seed)
        secs = np.array([d[4] for d in sel])
        acc_lo, acc_hi = a.accuracy.interval
        se_lo, se_hi = a.sensitivity.interval
        sp_lo, sp_hi = a.specificity.interval
        out.append(
            {
                "group": group,
                "arm": arm,
                "reader": "" if reader is None else reader,
                "n": a.n,
                "accuracy": a.accuracy.value,
                "accuracy_lo": acc_lo,
                "accuracy_hi": acc_hi,
                "qwk": a.kappa,
                "qwk_lo": a.kappa_interval[0],
                "qwk_hi": a.kappa_interval[1],
                "sensitivity": a.sensitivity.value,
                "sensitivity_lo": se_lo,
                "sensitivity_hi": se_hi,
                "specificity": a.specificity.value,
                "specificity_lo": sp_lo,
                "specificity_hi": sp_hi,
                "seconds_mean": float(secs.mean()),
                "seconds_median": float(np.median(secs)),
            }
        )
    return out
