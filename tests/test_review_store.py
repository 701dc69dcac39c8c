"""The review store: durable grades with history and undo, resume, export and import, and one clear line
(with the record kept in memory) when SQLite refuses a write."""

from __future__ import annotations

import csv
import json
import os
import sqlite3

import numpy as np
import pytest
from PIL import Image

from retinaview.cli import main
from retinaview.core.common.io import file_digest
from retinaview.core.common.labels import read_label_rows
from retinaview.core.common.review_store import (
    SCHEMA_VERSION,
    ReviewStore,
    ReviewStoreError,
    default_review_path,
)


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / f"{i}_left.png")
    return d


@pytest.fixture
def store(folder):
    s = ReviewStore.for_folder(folder)
    s.reviewer = "Dr Ada"
    yield s
    s.close()


def test_database_lives_in_the_data_directory_with_wal_and_full_sync(folder, tmp_path, store):
    path = default_review_path(folder)
    assert store.path == path
    assert path.is_relative_to(tmp_path / "data" / "retinaview" / "reviews")
    assert not any(p.suffix == ".sqlite" for p in folder.iterdir())
    assert default_review_path(str(folder) + "/") == path
    assert default_review_path(tmp_path / "other") != path
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.schema_version() == SCHEMA_VERSION
    assert store.get_meta("folder") == str(folder.resolve())


def test_grade_is_committed_before_the_call_returns(folder, store):
    rec = store.grade(folder / "0_left.png", 3, confidence=4, note="IRMA", seconds=7.5, model="m")
    assert rec.referable and rec.digest == file_digest(folder / "0_left.png")
    # Another connection (another process would see the same) reads it at once.
    other = sqlite3.connect(store.path)
    row = other.execute("SELECT file, grade, note, reviewer FROM records").fetchall()
    other.close()
    assert row == [("0_left.png", 3, "IRMA", "Dr Ada")]


def test_referable_is_derived_and_bad_values_are_refused(store):
    assert not store.grade("a.png", 1, digest="a").referable
    assert store.grade("b.png", 2, digest="b").referable
    rec = store.grade("c.png", None, digest="c", gradable=False, reason="out of focus")
    assert rec.referable and rec.grade is None
    for kwargs in (
        {"grade": 5},
        {"grade": None},
        {"grade": 1, "gradable": False, "reason": "blurry"},
        {"grade": 1, "reason": "other"},
        {"grade": 1, "confidence": 0},
    ):
        with pytest.raises(ReviewStoreError):
            store.grade("d.png", digest="d", **kwargs)
    assert store.pending == []  # refused input is not a lost grade


def test_change_keeps_history_and_undo_walks_back(store):
    first = store.grade("x.png", 1, digest="dx")
    second = store.grade("x.png", 3, digest="dx", note="changed my mind")
    assert second.created == first.created and second.updated >= first.updated
    hist = store.history("x.png")
    assert [(h.action, h.before and h.before["grade"], h.after["grade"]) for h in hist] == [
        ("grade", None, 1),
        ("grade", 1, 3),
    ]
    assert all(h.reviewer == "Dr Ada" for h in hist)
    assert store.undo().after["grade"] == 3
    assert store.get("x.png", "dx").grade == 1
    assert store.undo().after["grade"] == 1
    assert store.get("x.png", "dx") is None
    assert store.undo() is None
    assert [h.action for h in store.history("x.png")] == ["grade", "grade", "undo", "undo"]


def test_reopening_resumes_at_the_first_ungraded_image(folder, store):
    files = sorted(folder.iterdir())
    store.grade(files[0], 0)
    store.grade(files[1], 2)
    store.close()
    again = ReviewStore.for_folder(folder)
    assert again.reviewer == "Dr Ada"
    assert again.first_ungraded(files) == 2
    assert again.get(files[1]).grade == 2
    again.reviewer = "Dr Bo"  # a second reviewer starts from the beginning
    assert again.first_ungraded(files) == 0
    again.close()


def test_a_replaced_file_is_not_taken_for_the_graded_one(folder, store):
    path = folder / "1_left.png"
    store.grade(path, 4)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    assert store.get(path) is None


def test_export_is_eyepacs_compatible_and_import_gives_ground_truth(folder, store, tmp_path):
    store.grade("0_left.png", 2, confidence=5)
    store.grade("1_left.png", None, gradable=False, reason="too dark")
    store.add_quality("1_left.png", False, "too dark", {"brightness": 0.05})
    store.add_prediction("0_left.png", 1, "paper17", "abc123")
    out = tmp_path / "grades.csv"
    assert store.export_csv(out) == 2
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:2] == ["image", "level"]
    assert (rows[0]["image"], rows[0]["level"], rows[0]["referable"]) == ("0_left", "2", "1")
    assert rows[0]["model_grade"] == "1" and rows[0]["confidence"] == "5"
    assert (rows[1]["level"], rows[1]["gradable"], rows[1]["reason"]) == ("", "0", "too dark")
    assert (rows[1]["quality_gradable"], rows[1]["quality_reason"]) == ("0", "too dark")
    # The two EyePACS columns, cut out, are a labels file retinaview reads.
    eyepacs = tmp_path / "eyepacs.csv"
    eyepacs.write_text(
        "image,level\n" + "".join(f"{r['image']},{r['level']}\n" for r in rows if r["level"])
    )
    assert [(r.image, r.grade) for r in read_label_rows(eyepacs)] == [("0_left", 2)]
    labels = tmp_path / "labels.csv"
    labels.write_text("image,level\n0_left,2\n2_left,0\n")
    assert store.import_ground_truth(labels) == 2
    assert store.reference_grade("0_left.png") == 2 and store.reference_grade("3_left.png") is None


def test_agreement_by_reviewer_model_and_truth(store, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("image,level\n" + "".join(f"i{i},{i % 5}\n" for i in range(10)))
    store.import_ground_truth(labels)
    for i in range(10):
        store.grade(f"i{i}.png", i % 5, digest=f"d{i}")  # Dr Ada agrees with the truth
        store.grade(f"i{i}.png", 0, digest=f"d{i}", reviewer="Dr Bo")  # Dr Bo says 0 always
        store.add_prediction(f"i{i}.png", i % 5, "m", "c", digest=f"d{i}")
    rep = store.agreement()
    assert rep["Dr Ada"]["reviewer_vs_truth"].kappa == pytest.approx(1.0)
    assert rep["Dr Ada"]["reviewer_vs_model"].kappa == pytest.approx(1.0)
    bo = rep["Dr Bo"]["reviewer_vs_truth"]
    assert bo.accuracy.value == pytest.approx(0.2) and bo.kappa == pytest.approx(0.0)
    assert bo.sensitivity.value == 0.0 and bo.specificity.value == 1.0
    assert rep["all"]["reviewer_vs_truth"].n == 20
    assert rep["all"]["model_vs_truth"].accuracy.value == 1.0
    assert store.disagreements("model") == set()
    assert store.disagreements("truth", reviewer="Dr Bo") == {
        f"i{i}.png" for i in range(10) if i % 5
    }
    assert store.disagreements("model", reviewer="Dr Bo", referable=True) == {
        f"i{i}.png" for i in range(10) if i % 5 >= 2
    }


# ------------------------------------------------------------------------------------------------
# Refused writes: one line naming the database, the record kept in memory, nothing lost
# ------------------------------------------------------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo, path) -> str:
    text = str(exc.value)
    assert "\n" not in text and str(path) in text
    return text


def test_locked_database_keeps_the_grade_pending_until_retry(folder, tmp_path):
    store = ReviewStore.for_folder(folder, busy_timeout_s=0.05)
    store.reviewer = "Dr Ada"
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(ReviewStoreError) as exc:
        store.grade("0_left.png", 2, note="before the lock went")
    assert "locked" in _one_line(exc, store.path)
    assert [(p.file, p.grade, p.note) for p in store.pending] == [
        ("0_left.png", 2, "before the lock went")
    ]
    saved = tmp_path / "saved.csv"
    assert store.save_pending_to(saved) == 1
    assert "before the lock went" in saved.read_text()
    locker.execute("ROLLBACK")
    locker.close()
    assert store.retry_pending() == 1 and store.pending == []
    assert store.get("0_left.png").grade == 2
    store.close()


def test_full_disk_and_read_only_database_are_one_line_and_kept(store):
    store.grade("a.png", 1, digest="a")
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages}")  # SQLite's "database or disk is full"
    with pytest.raises(ReviewStoreError) as exc:
        for i in range(50):
            store.grade(f"n{i}.png", 1, digest=f"n{i}", note="x" * 4000)
    assert "disk full" in _one_line(exc, store.path)
    assert store.pending[-1].note == "x" * 4000
    store.conn.execute("PRAGMA max_page_count=1000000")
    # SQLITE_READONLY, as from a file that became read-only (root ignores file modes, so the test
    # makes SQLite itself refuse writes).
    store.conn.execute("PRAGMA query_only=1")
    with pytest.raises(ReviewStoreError) as exc:
        store.grade("r.png", 4, digest="r")
    assert "read-only" in _one_line(exc, store.path)
    assert store.pending[-1].file == "r.png"
    store.conn.execute("PRAGMA query_only=0")
    n = len(store.pending)
    assert store.retry_pending() == n
    assert store.get("r.png", "r").grade == 4


def test_data_folder_that_cannot_be_made_is_one_line(folder, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker / "data"))
    with pytest.raises(ReviewStoreError) as exc:
        ReviewStore.for_folder(folder)
    assert "cannot create the review folder" in _one_line(exc, blocker)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_data_folder_is_one_line(folder, tmp_path):
    home = tmp_path / "data"
    home.mkdir()
    home.chmod(0o500)
    try:
        with pytest.raises(ReviewStoreError) as exc:
            ReviewStore.for_folder(folder)
        assert "\n" not in str(exc.value)
    finally:
        home.chmod(0o700)


def test_corrupt_database_is_one_line(folder, tmp_path, capsys):
    path = default_review_path(folder)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not SQLite" * 300)
    with pytest.raises(ReviewStoreError) as exc:
        ReviewStore.for_folder(folder)
    assert "corrupt" in _one_line(exc, path)
    assert main(["review", "export", str(folder), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt" in err[0]
    kept = ReviewStore.set_aside(path)
    assert kept.read_bytes().startswith(b"this is not SQLite") and not path.exists()
    with ReviewStore.for_folder(folder) as fresh:
        assert fresh.records() == []


def test_a_newer_grade_replaces_a_pending_one(store):
    locker = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    store.conn.execute("PRAGMA busy_timeout=20")
    locker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(ReviewStoreError):
        store.grade("a.png", 1, digest="a")
    with pytest.raises(ReviewStoreError):
        store.grade("b.png", 4, digest="b")
    locker.execute("ROLLBACK")
    locker.close()
    store.grade("a.png", 2, digest="a")
    assert [p.file for p in store.pending] == ["b.png"]
    assert store.retry_pending() == 1
    assert (store.get("a.png", "a").grade, store.get("b.png", "b").grade) == (2, 4)


def test_damaged_page_is_found_when_the_project_opens(store):
    for i in range(300):
        store.grade(f"f{i}.png", i % 5, digest=f"{i:032x}", note="n" * 100)
    store.close()
    size = store.path.stat().st_size
    with open(store.path, "r+b") as fh:
        fh.seek(size // 2 // 4096 * 4096)
        fh.write(bytes(range(256)) * 32)
    with pytest.raises(ReviewStoreError) as exc:
        ReviewStore(store.path)
    assert "corrupt" in _one_line(exc, store.path)


def test_other_databases_and_newer_schemas_are_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ReviewStoreError, match="not a retinaview review database"):
        ReviewStore(other)
    newer = tmp_path / "newer.sqlite"
    ReviewStore(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_version VALUES (?, 'future')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(ReviewStoreError, match="newer retinaview"):
        ReviewStore(newer)


def test_review_commands_import_export_and_agreement(folder, store, tmp_path, capsys):
    store.grade("0_left.png", 2)
    store.grade("1_left.png", 0)
    store.close()
    labels = tmp_path / "labels.csv"
    labels.write_text("image,level\n0_left,2\n1_left,1\n")
    assert main(["review", "import-labels", str(folder), str(labels)]) == 0
    out = tmp_path / "export.csv"
    assert main(["review", "export", str(folder), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("image,level,file,reviewer")
    capsys.readouterr()
    assert main(["review", "agreement", str(folder), "--json", "--bootstrap", "50"]) == 0
    rep = json.loads(capsys.readouterr().out)
    a = rep["Dr Ada"]["reviewer_vs_truth"]
    assert (a["n"], a["accuracy"], a["sensitivity"], a["specificity"]) == (2, 0.5, 1.0, 1.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,grade\nx,1\n")
    assert main(["review", "import-labels", str(folder), str(bad)]) == 2
    assert "expected columns image,level" in capsys.readouterr().err
    assert main(["review", "export", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


def test_an_older_schema_is_migrated_keeping_the_grades(store, monkeypatch):
    import retinaview.core.common.review_store as rs

    store.grade("a.png", 3, digest="a")
    store.close()
    step = ("ALTER TABLE records ADD COLUMN laterality TEXT",)
    monkeypatch.setattr(rs, "_MIGRATIONS", (*rs._MIGRATIONS, step))
    monkeypatch.setattr(rs, "SCHEMA_VERSION", rs.SCHEMA_VERSION + 1)
    with ReviewStore(store.path) as again:
        assert again.schema_version() == SCHEMA_VERSION + 1
        assert again.get("a.png", "a").grade == 3
        cols = [r[1] for r in again.conn.execute("PRAGMA table_info(records)")]
        assert "laterality" in cols
        versions = again.conn.execute("SELECT version FROM schema_version").fetchall()
        assert versions == [(1,), (2,)]
