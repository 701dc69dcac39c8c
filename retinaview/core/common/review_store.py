"""The review store: a grader's decisions on a folder of fundus photographs, one SQLite database per folder.

A record per (image, reviewer): ICDR grade 0-4, gradable or not with a reason, referable (grade >= 2 or
ungradable), confidence 1-5, a note, time stamps, seconds spent, and the model (name and checksum) that was
loaded. Images are identified by their file name and the digest of their bytes (`file_digest`), so a file
renamed or replaced is not mistaken for the one graded. Every change is kept in a history table (who, when,
before, after) and the last change can be undone.

Durability: WAL journal with ``synchronous=FULL``, so a grade returned by `ReviewStore.grade` is on disk (the
commit fsyncs the write-ahead log) and survives a killed process or a power cut. The database lives in the
user's data directory (``$XDG_DATA_HOME/retinaview/reviews``), never in the image folder, which may be
read-only. When SQLite refuses a write (corrupt file, database locked by another program, disk full,
read-only file) the call raises one `ReviewStoreError` line and the record is kept in `ReviewStore.pending`,
from which `ReviewStore.save_pending_to` writes it elsewhere and `ReviewStore.retry_pending` commits it later.

Standard library + numpy only (no torch, no Qt): the desktop app's grading panel calls this directly.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from retinaview.core.common.agreement import REFERABLE_GRADE, Agreement, agreement
from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.io import file_digest
from retinaview.core.common.labels import read_label_rows

__all__ = [
    "REASONS",
    "SCHEMA_VERSION",
    "GradeRecord",
    "HistoryEntry",
    "ReviewStore",
    "ReviewStoreError",
    "default_review_path",
    "reviews_dir",
]

# Why an image cannot be graded; the quality gate (`retinaview.core.quality`) uses the same words.
REASONS = ("out of focus", "poor field", "too dark", "too bright", "artefact", "other")
SCHEMA_VERSION = 1
DEFAULT_BUSY_TIMEOUT_S = 2.0

# Each entry moves the schema from version i to i + 1; a database of an older version is brought up to
# date when opened, one transaction per step.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE records (
            digest TEXT NOT NULL, file TEXT NOT NULL, reviewer TEXT NOT NULL,
            grade INTEGER CHECK (grade IS NULL OR grade BETWEEN 0 AND 4),
            gradable INTEGER NOT NULL, reason TEXT, referable INTEGER NOT NULL,
            confidence INTEGER CHECK (confidence IS NULL OR confidence BETWEEN 1 AND 5),
            note TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, updated TEXT NOT NULL,
            seconds REAL, model TEXT, model_checksum TEXT,
            PRIMARY KEY (digest, file, reviewer))""",
        "CREATE INDEX records_file ON records (file, reviewer)",
        """CREATE TABLE history (
            id INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT NOT NULL, file TEXT NOT NULL,
            reviewer TEXT NOT NULL, at TEXT NOT NULL, action TEXT NOT NULL,
            before TEXT, after TEXT, undone INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX history_reviewer ON history (reviewer, id)",
        """CREATE TABLE predictions (
            digest TEXT NOT NULL, file TEXT NOT NULL, model TEXT NOT NULL, model_checksum TEXT NOT NULL,
            grade INTEGER NOT NULL, referable_score REAL, at TEXT NOT NULL,
            PRIMARY KEY (digest, file, model_checksum))""",
        """CREATE TABLE quality (
            digest TEXT NOT NULL, file TEXT NOT NULL, gradable INTEGER NOT NULL, reason TEXT,
            measures TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (digest, file))""",
        """CREATE TABLE ground_truth (
            image TEXT PRIMARY KEY, grade INTEGER NOT NULL, source TEXT NOT NULL)""",
    ),
)


class ReviewStoreError(RetinaviewError):
    """The review database cannot be opened or written: one line naming the file and the problem."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def reviews_dir() -> Path:
    """``$XDG_DATA_HOME/retinaview/reviews`` (``~/.local/share/retinaview/reviews`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "retinaview" / "reviews"


def default_review_path(folder: str | os.PathLike[str]) -> Path:
    """The database of a review project: ``reviews_dir() / <blake2b of the absolute folder path>.sqlite``."""
    key = str(Path(folder).expanduser().resolve())
    name = hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()
    return reviews_dir() / f"{name}.sqlite"


@dataclass(frozen=True)
class GradeRecord:
    """One reviewer's decision on one image. ``grade`` may be None only for an ungradable image."""

    file: str
    digest: str
    reviewer: str
    grade: int | None
    gradable: bool = True
    reason: str | None = None
    referable: bool = False
    confidence: int | None = None
    note: str = ""
    seconds: float | None = None
    model: str | None = None
    model_checksum: str | None = None
    created: str = ""
    updated: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


_RECORD_COLUMNS = tuple(f.name for f in fields(GradeRecord))


@dataclass(frozen=True)
class HistoryEntry:
    """A change: ``before`` / ``after`` are the record's fields (None: no record)."""

    id: int
    file: str
    digest: str
    reviewer: str
    at: str
    action: str  # "grade" or "undo"
    before: dict | None
    after: dict | None
    undone: bool


def _describe(exc: sqlite3.Error) -> str:
    """SQLite's error -> a few words a grader understands."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    text = " ".join(str(exc).split())
    if code.startswith("SQLITE_FULL") or "disk is full" in text:
        return "disk full"
    if code.startswith("SQLITE_READONLY") or "readonly" in text:
        return "read-only (cannot write)"
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "database locked by another program"
    if (
        code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
        or "malformed" in text
        or ("not a database" in text)
    ):
        return "corrupt database file"
    if code.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "cannot open the database file"
    if code.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return f"disk error ({text})"
    return text


def _key(r: GradeRecord) -> tuple[str, str, str]:
    return (r.file, r.digest, r.reviewer)


def _validate(
    grade: int | None, gradable: bool, reason: str | None, confidence: int | None
) -> None:
    if grade is not None and (isinstance(grade, bool) or grade not in range(5)):
        raise ReviewStoreError(f"grade must be 0-4, not {grade!r}")
    if grade is None and gradable:
        raise ReviewStoreError("a gradable image needs a grade 0-4")
    if not gradable and reason not in REASONS:
        raise ReviewStoreError(f"an ungradable image needs a reason: one of {', '.join(REASONS)}")
    if gradable and reason is not None:
        raise ReviewStoreError("a reason is only given for an ungradable image")
    if confidence is not None and confidence not in range(1, 6):
        raise ReviewStoreError(f"confidence must be 1-5, not {confidence!r}")


class ReviewStore:
    """Grades of one review project (a folder of images) in one SQLite database.

    Parameters
    ----------
    path
        The database file; created with its folder when missing. Use `ReviewStore.for_folder` for the
        project of an image folder.
    folder
        The image folder, to compute digests of files given by name; stored in the database.
    busy_timeout_s
        How long a write waits for another program's lock before it fails.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        folder: str | os.PathLike[str] | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.pending: list[GradeRecord] = []
        self._conn: sqlite3.Connection | None = None
        self._reviewer_name: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReviewStoreError(
                f"{self.path.parent}: cannot create the review folder ({exc.strerror or exc})"
            ) from None
        try:
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=busy_timeout_s, check_same_thread=True
            )
        except sqlite3.Error as exc:
            raise ReviewStoreError(f"{self.path}: {_describe(exc)}") from None
        self._conn = conn
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ReviewStoreError(f"{self.path}: cannot use a write-ahead log (mode {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
            # A damaged page would otherwise surface only when a grade touches it.
            check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                first = " ".join(str(check).split())[:120]
                raise ReviewStoreError(f"{self.path}: corrupt database file ({first})")
        except sqlite3.Error as exc:
            self.close()
            raise ReviewStoreError(f"{self.path}: {_describe(exc)}") from None
        except ReviewStoreError:
            self.close()
            raise
        self.folder: Path | None = None
        try:
            stored = self.get_meta("folder")
            if folder is not None:
                self.folder = Path(folder).expanduser().resolve()
                if stored != str(self.folder):
                    self.set_meta("folder", str(self.folder))
            elif stored:
                self.folder = Path(stored)
        except ReviewStoreError:
            self.close()
            raise

    @staticmethod
    def set_aside(path: str | os.PathLike[str]) -> Path:
        """Rename a database that cannot be used (and its -wal and -shm files) to
        ``<name>.unreadable-<UTC time>``, kept for recovery, so a fresh one can be created at ``path``.
        Returns the new name of the database file."""
        src = Path(path)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        dst = src.with_name(f"{src.name}.unreadable-{stamp}")
        try:
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(src) + suffix)
                if part.exists():
                    part.rename(Path(str(dst) + suffix))
        except OSError as exc:
            raise ReviewStoreError(
                f"{src}: cannot set the database aside ({exc.strerror or exc})"
            ) from None
        return dst

    @classmethod
    def for_folder(
        cls, folder: str | os.PathLike[str], busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    ) -> ReviewStore:
        """Open (or create) the review project of an image folder, in the user's data directory."""
        return cls(default_review_path(folder), folder=folder, busy_timeout_s=busy_timeout_s)

    # ---------------------------------------------------------------------------------------------
    # Connection, schema, meta
    # ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database (pending records stay in memory)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ReviewStoreError(f"{self.path}: the review database is closed")
        return self._conn

    def _error(self, exc: sqlite3.Error) -> ReviewStoreError:
        return ReviewStoreError(f"{self.path}: {_describe(exc)}")

    def _write(self, statements: Iterable[tuple[str, tuple]]) -> None:
        """Run the statements in one IMMEDIATE transaction; committed (and fsynced) on return."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def schema_version(self) -> int:
        """The schema version of the open database (0 for an empty file)."""
        try:
            return self._version(self.conn)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _version(self, conn: sqlite3.Connection) -> int:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not names:
            return 0
        if "schema_version" not in names:
            raise ReviewStoreError(f"{self.path}: not a retinaview review database")
        return int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)

    def _migrate(self) -> None:
        conn = self.conn
        version = self._version(conn)
        if version > SCHEMA_VERSION:
            raise ReviewStoreError(
                f"{self.path}: review database of a newer retinaview (schema {version}, this one "
                f"reads up to {SCHEMA_VERSION})"
            )
        for step in range(version, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if step == 0:
                    conn.execute(
                        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT)"
                    )
                for sql in _MIGRATIONS[step]:
                    conn.execute(sql)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (step + 1, _now()))
                if step == 0:
                    conn.execute("INSERT INTO meta VALUES ('created', ?)", (_now(),))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write([("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))])

    @property
    def reviewer(self) -> str | None:
        """The project's reviewer name (asked once per project by the app), or None. Kept in memory
        once read or set, so grades can still be recorded (pending) when the database fails."""
        if self._reviewer_name is None:
            self._reviewer_name = self.get_meta("reviewer")
        return self._reviewer_name

    @reviewer.setter
    def reviewer(self, name: str) -> None:
        name = " ".join(str(name).split())
        if not name:
            raise ReviewStoreError("the reviewer name is empty")
        self._reviewer_name = name
        self.set_meta("reviewer", name)

    def _reviewer(self, reviewer: str | None) -> str:
        name = reviewer if reviewer is not None else self.reviewer
        if not name:
            raise ReviewStoreError(f"{self.path}: no reviewer name set for this review project")
        return name

    # ---------------------------------------------------------------------------------------------
    # Grades
    # ---------------------------------------------------------------------------------------------

    def _identify(self, file: str | os.PathLike[str], digest: str | None) -> tuple[str, str]:
        """(file name, digest): the digest is computed from the folder's file when not given."""
        name = Path(file).name
        if digest is None:
            path = Path(file)
            if not path.is_absolute() and self.folder is not None and not path.exists():
                path = self.folder / name
            digest = file_digest(path)
        return name, digest

    def grade(
        self,
        file: str | os.PathLike[str],
        grade: int | None,
        *,
        digest: str | None = None,
        gradable: bool = True,
        reason: str | None = None,
        confidence: int | None = None,
        note: str = "",
        seconds: float | None = None,
        model: str | None = None,
        model_checksum: str | None = None,
        reviewer: str | None = None,
    ) -> GradeRecord:
        """Record (or change) the reviewer's decision on an image; committed to disk before it returns.

        ``file`` is a path or a file name in the project folder; ``digest`` (`file_digest`) is computed
        when not given. ``referable`` is derived: grade >= 2 or not gradable. A change keeps the first
        time stamp and adds a history entry with the record before and after. When the database refuses
        the write, the record is appended to `pending` and `ReviewStoreError` is raised.
        """
        _validate(grade, gradable, reason, confidence)
        name, digest = self._identify(file, digest)
        who = self._reviewer(reviewer)
        now = _now()
        record = GradeRecord(
            file=name,
            digest=digest,
            reviewer=who,
            grade=None if grade is None else int(grade),
            gradable=bool(gradable),
            reason=reason,
            referable=(not gradable) or (grade is not None and grade >= REFERABLE_GRADE),
            confidence=confidence,
            note=str(note),
            seconds=None if seconds is None else float(seconds),
            model=model,
            model_checksum=model_checksum,
            created=now,
            updated=now,
        )
        try:
            before = self._get_exact(name, digest, who)
            if before is not None:
                record = replace(record, created=before.created)
            self._write(self._put_statements(record, before, "grade", now))
        except ReviewStoreError:
            self.pending.append(record)
            raise
        # A newer decision on the same image replaces one still waiting to be saved.
        self.pending = [p for p in self.pending if _key(p) != _key(record)]
        return record

    def _put_statements(
        self, record: GradeRecord, before: GradeRecord | None, action: str, at: str
    ) -> list[tuple[str, tuple]]:
        values = tuple(getattr(record, c) for c in _RECORD_COLUMNS)
        placeholders = ", ".join("?" for _ in _RECORD_COLUMNS)
        return [
            (
                f"INSERT OR REPLACE INTO records ({', '.join(_RECORD_COLUMNS)}) "
                f"VALUES ({placeholders})",
                values,
            ),
            self._history_statement(record, before, record, action, at),
        ]

    @staticmethod
    def _history_statement(
        key: GradeRecord,
        before: GradeRecord | None,
        after: GradeRecord | None,
        action: str,
        at: str,
    ) -> tuple[str, tuple]:
        return (
            "INSERT INTO history (digest, file, reviewer, at, action, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.digest,
                key.file,
                key.reviewer,
                at,
                action,
                None if before is None else json.dumps(before.as_dict()),
                None if after is None else json.dumps(after.as_dict()),
            ),
        )

    @staticmethod
    def _record(row: Sequence) -> GradeRecord:
        d = dict(zip(_RECORD_COLUMNS, row, strict=True))
        d["gradable"] = bool(d["gradable"])
        d["referable"] = bool(d["referable"])
        return GradeRecord(**d)

    def _get_exact(self, file: str, digest: str, reviewer: str) -> GradeRecord | None:
        rows = self._read(
            f"SELECT {', '.join(_RECORD_COLUMNS)} FROM records "
            "WHERE file = ? AND digest = ? AND reviewer = ?",
            (file, digest, reviewer),
        )
        return self._record(rows[0]) if rows else None

    def get(
        self, file: str | os.PathLike[str], digest: str | None = None, reviewer: str | None = None
    ) -> GradeRecord | None:
        """The reviewer's record of an image (by name and digest; by name only when ``digest`` is None
        and the file is not in the folder), or None."""
        who = self._reviewer(reviewer)
        name = Path(file).name
        if digest is None:
            try:
                name, digest = self._identify(file, None)
            except RetinaviewError:
                digest = None
        if digest is None:
            rows = self._read(
                f"SELECT {', '.join(_RECORD_COLUMNS)} FROM records WHERE file = ? AND reviewer = ? "
                "ORDER BY updated DESC LIMIT 1",
                (name, who),
            )
            return self._record(rows[0]) if rows else None
        return self._get_exact(name, digest, who)

    def records(self, reviewer: str | None = None) -> list[GradeRecord]:
        """All records, or one reviewer's, by file name."""
        sql = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM records"
        params: tuple = ()
        if reviewer is not None:
            sql += " WHERE reviewer = ?"
            params = (reviewer,)
        return [self._record(r) for r in self._read(sql + " ORDER BY file, reviewer", params)]

    def graded_files(self, reviewer: str | None = None) -> set[str]:
        """File names the reviewer has a record for."""
        who = self._reviewer(reviewer)
        return {r[0] for r in self._read("SELECT file FROM records WHERE reviewer = ?", (who,))}

    def first_ungraded(
        self, files: Sequence[str | os.PathLike[str]], reviewer: str | None = None
    ) -> int | None:
        """Index in ``files`` of the first image the reviewer has not graded (matched by file name,
        so opening a large folder does not read every file), or None when all are graded."""
        done = self.graded_files(reviewer)
        for i, f in enumerate(files):
            if Path(f).name not in done:
                return i
        return None

    def history(
        self, file: str | os.PathLike[str] | None = None, reviewer: str | None = None
    ) -> list[HistoryEntry]:
        """Changes, oldest first; of one file and/or one reviewer when given."""
        where, params = [], []
        if file is not None:
            where.append("file = ?")
            params.append(Path(file).name)
        if reviewer is not None:
            where.append("reviewer = ?")
            params.append(reviewer)
        return self._history_where(" AND ".join(where), tuple(params))

    def _history_where(self, where: str, params: tuple) -> list[HistoryEntry]:
        sql = "SELECT id, file, digest, reviewer, at, action, before, after, undone FROM history"
        if where:
            sql += " WHERE " + where
        rows = self._read(sql + " ORDER BY id", params)
        return [
            HistoryEntry(
                id=r[0],
                file=r[1],
                digest=r[2],
                reviewer=r[3],
                at=r[4],
                action=r[5],
                before=None if r[6] is None else json.loads(r[6]),
                after=None if r[7] is None else json.loads(r[7]),
                undone=bool(r[8]),
            )
            for r in rows
        ]

    def undo(self, reviewer: str | None = None) -> HistoryEntry | None:
        """Undo the reviewer's last change not yet undone: the record goes back to what it was before
        (or is removed when it was new). Returns the change undone, or None when there is nothing."""
        who = self._reviewer(reviewer)
        found = self._history_where(
            "id = (SELECT max(id) FROM history WHERE reviewer = ? AND action = 'grade' "
            "AND undone = 0)",
            (who,),
        )
        if not found:
            return None
        entry = found[0]
        after = GradeRecord(**entry.after) if entry.after else None
        before = GradeRecord(**entry.before) if entry.before else None
        key = after if after is not None else before
        if key is None:
            return None
        now = _now()
        statements: list[tuple[str, tuple]] = [
            ("UPDATE history SET undone = 1 WHERE id = ?", (entry.id,))
        ]
        if before is None:
            statements.append(
                (
                    "DELETE FROM records WHERE file = ? AND digest = ? AND reviewer = ?",
                    (key.file, key.digest, key.reviewer),
                )
            )
        else:
            values = tuple(getattr(before, c) for c in _RECORD_COLUMNS)
            statements.append(
                (
                    f"INSERT OR REPLACE INTO records ({', '.join(_RECORD_COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in _RECORD_COLUMNS)})",
                    values,
                )
            )
        statements.append(self._history_statement(key, after, before, "undo", now))
        self._write(statements)
        return entry

    # ---------------------------------------------------------------------------------------------
    # Pending records (kept in memory when the database refused them)
    # ---------------------------------------------------------------------------------------------

    def save_pending_to(self, path: str | os.PathLike[str]) -> int:
        """Write the pending records to a CSV file (the export's columns); returns how many."""
        out = Path(path)
        try:
            with open(out, "w", newline="", encoding="utf-8") as fh:
                _write_records_csv(fh, self.pending)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise ReviewStoreError(f"{out}: cannot write ({exc.strerror or exc})") from None
        return len(self.pending)

    def retry_pending(self) -> int:
        """Commit the pending records in order (each as a change with history); returns how many were
        committed. Stops at the first refusal with `ReviewStoreError`, keeping the rest pending."""
        done = 0
        while self.pending:
            rec = self.pending[0]
            before = self._get_exact(rec.file, rec.digest, rec.reviewer)
            if before is not None:
                rec = replace(rec, created=before.created)
            self._write(self._put_statements(rec, before, "grade", rec.updated))
            self.pending.pop(0)
            done += 1
        return done

    # ---------------------------------------------------------------------------------------------
    # Model predictions, quality verdicts, ground truth
    # ---------------------------------------------------------------------------------------------

    def add_prediction(
        self,
        file: str | os.PathLike[str],
        grade: int,
        model: str,
        model_checksum: str,
        *,
        digest: str | None = None,
        referable_score: float | None = None,
    ) -> None:
        """Store the model's grade of an image (for reviewer-vs-model agreement)."""
        if grade not in range(5):
            raise ReviewStoreError(f"model grade must be 0-4, not {grade!r}")
        name, digest = self._identify(file, digest)
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (digest, name, model, model_checksum, int(grade), referable_score, _now()),
                )
            ]
        )

    def predictions(self) -> dict[str, int]:
        """file name -> the model's latest stored grade."""
        rows = self._read("SELECT file, grade FROM predictions ORDER BY at")
        return {f: int(g) for f, g in rows}

    def add_quality(
        self,
        file: str | os.PathLike[str],
        gradable: bool,
        reason: str | None,
        measures: dict,
        *,
        digest: str | None = None,
    ) -> None:
        """Store the quality gate's verdict of an image (for the browser and the CSV)."""
        name, digest = self._identify(file, digest)
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO quality VALUES (?, ?, ?, ?, ?, ?)",
                    (digest, name, int(bool(gradable)), reason, json.dumps(measures), _now()),
                )
            ]
        )

    def quality(self) -> dict[str, tuple[bool, str | None]]:
        """file name -> (gradable, reason) of the quality gate."""
        rows = self._read("SELECT file, gradable, reason FROM quality ORDER BY at")
        return {f: (bool(g), r) for f, g, r in rows}

    def import_ground_truth(self, csv_path: str | os.PathLike[str]) -> int:
        """Read an EyePACS or APTOS labels CSV as the project's reference grades (replacing any
        earlier import); returns the number of labels."""
        rows = read_label_rows(csv_path)
        source = Path(csv_path).name
        self._write(
            [("DELETE FROM ground_truth", ())]
            + [
                ("INSERT INTO ground_truth VALUES (?, ?, ?)", (r.image, r.grade, source))
                for r in rows
            ]
        )
        return len(rows)

    def ground_truth(self) -> dict[str, int]:
        """Label name (as written in the CSV: a file name or a name without extension) -> grade."""
        return {i: int(g) for i, g in self._read("SELECT image, grade FROM ground_truth")}

    def reference_grade(self, file: str, truth: dict[str, int] | None = None) -> int | None:
        """The ground-truth grade of a file name, matched by name or by name without extension."""
        truth = self.ground_truth() if truth is None else truth
        if file in truth:
            return truth[file]
        return truth.get(Path(file).stem)

    # ---------------------------------------------------------------------------------------------
    # Export and agreement
    # ---------------------------------------------------------------------------------------------

    def export_csv(self, path: str | os.PathLike[str], reviewer: str | None = None) -> int:
        """Write the records as CSV: ``image,level`` first (EyePACS: the name without extension and the
        grade; empty for an ungradable image without a grade), then every other field, the quality gate's
        verdict and the model's grade. Returns the number of rows."""
        records = self.records(reviewer)
        quality = self.quality()
        preds = self.predictions()
        out = Path(path)
        try:
            with open(out, "w", newline="", encoding="utf-8") as fh:
                _write_records_csv(fh, records, quality, preds)
        except OSError as exc:
            raise ReviewStoreError(f"{out}: cannot write ({exc.strerror or exc})") from None
        return len(records)

    def disagreements(
        self, against: str = "model", reviewer: str | None = None, referable: bool = False
    ) -> set[str]:
        """File names where the reviewer's grade differs from the model's (``against="model"``) or the
        ground truth's (``"truth"``); with ``referable`` only where the referable decision differs
        (an ungradable record is referable). For the browser's disagreement filter."""
        if against not in ("model", "truth"):
            raise ValueError(f"against must be 'model' or 'truth', not {against!r}")
        other = self.predictions() if against == "model" else None
        truth = self.ground_truth() if against == "truth" else {}
        out = set()
        for r in self.records(self._reviewer(reviewer)):
            g = other.get(r.file) if other is not None else self.reference_grade(r.file, truth)
            if g is None:
                continue
            if referable:
                differs = r.referable != (g >= REFERABLE_GRADE)
            else:
                differs = r.grade != g
            if differs:
                out.add(r.file)
        return out

    def agreement(self, n_boot: int = 0) -> dict[str, dict[str, Agreement]]:
        """Agreement of reviewers, model and ground truth on the images both sides graded.

        Returns ``{"all": {...}, "<reviewer>": {...}}``, each with the pairs that have data among
        ``reviewer_vs_truth``, ``model_vs_truth`` and ``reviewer_vs_model``. Ungradable records count as
        referable and are left out of the grade comparisons (they have no grade).
        """
        records = [r for r in self.records() if r.grade is not None]
        truth = self.ground_truth()
        preds = self.predictions()
        out: dict[str, dict[str, Agreement]] = {}
        groups = {"all": records}
        for r in records:
            groups.setdefault(r.reviewer, []).append(r)
        for who, recs in groups.items():
            pairs: dict[str, Agreement] = {}
            rt = [(self.reference_grade(r.file, truth), r) for r in recs]
            rt = [(t, r) for t, r in rt if t is not None]
            if rt:
                pairs["reviewer_vs_truth"] = agreement(
                    [t for t, _ in rt], [r.grade for _, r in rt], n_boot=n_boot
                )
            rm = [(preds[r.file], r) for r in recs if r.file in preds]
            if rm:
                pairs["reviewer_vs_model"] = agreement(
                    [r.grade for _, r in rm], [m for m, _ in rm], n_boot=n_boot
                )
            if who == "all":
                mt = [(self.reference_grade(f, truth), g) for f, g in preds.items()]
                mt = [(t, g) for t, g in mt if t is not None]
                if mt:
                    pairs["model_vs_truth"] = agreement(
                        [t for t, _ in mt], [g for _, g in mt], n_boot=n_boot
                    )
            out[who] = pairs
        return out


CSV_COLUMNS = (
    "image",
    "level",
    "file",
    "reviewer",
    "gradable",
    "reason",
    "referable",
    "confidence",
    "note",
    "seconds",
    "created",
    "updated",
    "model",
    "model_checksum",
    "digest",
    "quality_gradable",
    "quality_reason",
    "model_grade",
)


def _write_records_csv(
    fh,
    records: Sequence[GradeRecord],
    quality: dict[str, tuple[bool, str | None]] | None = None,
    preds: dict[str, int] | None = None,
) -> None:
    quality = quality or {}
    preds = preds or {}
    w = csv.writer(fh)
    w.writerow(CSV_COLUMNS)
    for r in records:
        q = quality.get(r.file)
        w.writerow(
            [
                Path(r.file).stem,
                "" if r.grade is None else r.grade,
                r.file,
                r.reviewer,
                int(r.gradable),
                r.reason or "",
                int(r.referable),
                "" if r.confidence is None else r.confidence,
                r.note,
                "" if r.seconds is None else f"{r.seconds:.3f}",
                r.created,
                r.updated,
                r.model or "",
                r.model_checksum or "",
                r.digest,
                "" if q is None else int(q[0]),
                "" if q is None else (q[1] or ""),
                preds.get(r.file, ""),
            ]
        )
