"""Reader study: a balanced seeded design, a reader session that only hands out its own next case, and a
summary that recovers what simulated readers were given (accuracy and time that depend on the arm)."""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from retinaview.cli import main
from retinaview.core.common.study import (
    ARMS,
    ReaderSession,
    StudyError,
    create_study,
    study_info,
    summarize,
)


def _images(folder, n, seed=0):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(
            folder / f"{i}_left.png"
        )
    return folder


def _design(path, readers):
    import sqlite3

    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT reader, position, file, arm FROM cases").fetchall()
    conn.close()
    return rows


def test_design_is_balanced_and_seeded(tmp_path):
    folder = _images(tmp_path / "images", 12)
    a = create_study(folder, tmp_path / "a.sqlite", readers=6, seed=7)
    rows = _design(a, 6)
    assert len(rows) == 72
    for r in range(1, 7):
        mine = [x for x in rows if x[0] == r]
        assert sorted(x[2] for x in mine) == sorted(f"{i}_left.png" for i in range(12))
        assert Counter(x[3] for x in mine) == {arm: 4 for arm in ARMS}
    per_image = Counter((x[2], x[3]) for x in rows)
    assert set(per_image.values()) == {2}  # every image under every arm, twice over six readers
    assert _design(create_study(folder, tmp_path / "b.sqlite", readers=6, seed=7), 6) == rows
    assert _design(create_study(folder, tmp_path / "c.sqlite", readers=6, seed=8), 6) != rows
    orders = {tuple(x[2] for x in sorted(rows) if x[0] == r) for r in range(1, 7)}
    assert len(orders) == 6  # each reader gets a presentation order of their own
    assert study_info(a)["arms"] == list(ARMS)
    with pytest.raises(StudyError, match="already exists"):
        create_study(folder, a, readers=2)
    with pytest.raises(StudyError, match="arms"):
        create_study(folder, tmp_path / "d.sqlite", readers=2, arms=("unassisted", "oracle"))


def test_reader_session_hands_out_only_its_own_next_case(tmp_path):
    folder = _images(tmp_path / "images", 4)
    study = create_study(folder, tmp_path / "s.sqlite", readers=2, arms=("unassisted", "grade+map"))
    one = ReaderSession(study, 1)
    two = ReaderSession(study, 2)
    case = one.next_case()
    assert case.reader == 1 and case.arm in ("unassisted", "grade+map") and case.path.is_file()
    assert case.shows_model == case.shows_map == (case.arm == "grade+map")
    assert case.map_threshold == 2.0
    with pytest.raises(StudyError, match="not this reader's current case"):
        one.answer(
            dataclasses.replace(
                case, arm="grade+map" if case.arm == "unassisted" else "unassisted"
            ),
            1,
        )
    with pytest.raises(StudyError):
        two.answer(case, 1)
    one.answer(case, 2, confidence=4)
    assert one.progress() == (1, 4) and two.progress() == (0, 4)
    with pytest.raises(StudyError, match="not this reader's current case"):
        one.answer(case, 3)  # answered once, for good
    nxt = one.next_case()
    assert nxt.position == case.position + 1
    with pytest.raises(StudyError, match="grade"):
        one.answer(nxt, 7)
    with pytest.raises(StudyError, match="reader must be"):
        ReaderSession(study, 3)
    one.close()
    two.close()


# Simulated readers: correct with a probability that depends on the arm, otherwise one grade off;
# slower without assistance.
P_CORRECT = {"unassisted": 0.5, "grade": 0.7, "grade+map": 0.9}
SECONDS = {"unassisted": 30.0, "grade": 20.0, "grade+map": 15.0}


def test_summary_recovers_what_simulated_readers_were_given(tmp_path, capsys):
    n_images, n_readers = 60, 6
    folder = _images(tmp_path / "images", n_images)
    rng = np.random.default_rng(5)
    truth = {f"{i}_left": int(g) for i, g in enumerate(rng.integers(0, 5, n_images))}
    labels = tmp_path / "labels.csv"
    labels.write_text("image,level\n" + "".join(f"{k},{v}\n" for k, v in truth.items()))
    study = tmp_path / "study.sqlite"
    assert main(["study", "create", "--images", str(folder), "--readers", str(n_readers),
                 "--seed", "3", "--out", str(study)]) == 0  # fmt: skip
    for r in range(1, n_readers + 1):
        with ReaderSession(study, r) as session:
            while (case := session.next_case()) is not None:
                t = truth[case.file.removesuffix(".png")]
                if rng.random() < P_CORRECT[case.arm]:
                    g = t
                else:
                    g = t + 1 if t == 0 or (t < 4 and rng.random() < 0.5) else t - 1
                secs = rng.normal(SECONDS[case.arm], 2.0)
                session.answer(case, g, confidence=3, seconds=secs)
    out = tmp_path / "summary"
    capsys.readouterr()
    assert main(["study", "summary", str(study), "--reference", str(labels), "--out", str(out),
                 "--bootstrap", "200"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "grade+map" in printed and "QWK" in printed
    with open(out / "study_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    arms = {r["arm"]: r for r in rows if r["group"] == "arm"}
    assert set(arms) == set(ARMS)
    assert len([r for r in rows if r["group"] == "reader"]) == n_readers * 3
    for arm, p in P_CORRECT.items():
        a = arms[arm]
        assert int(a["n"]) == n_images * n_readers // 3
        # Within 3.3 standard errors of what the readers were given (sd <= 0.046 for n = 120).
        assert float(a["accuracy"]) == pytest.approx(p, abs=0.15), (arm, a)
        assert float(a["accuracy_lo"]) < float(a["accuracy"]) < float(a["accuracy_hi"])
        assert float(a["seconds_mean"]) == pytest.approx(SECONDS[arm], abs=1.0)
        assert float(a["qwk_lo"]) <= float(a["qwk"]) <= float(a["qwk_hi"])
    acc = {arm: float(arms[arm]["accuracy"]) for arm in ARMS}
    assert acc["unassisted"] < acc["grade"] < acc["grade+map"]
    assert float(arms["unassisted"]["accuracy_hi"]) < float(arms["grade+map"]["accuracy_lo"])
    assert float(arms["unassisted"]["qwk"]) < float(arms["grade+map"]["qwk"])
    png = Image.open(out / "study_summary.png")
    assert png.size[0] > 1000 and png.size[1] > 300


def test_session_measures_time_and_summary_needs_labels(tmp_path):
    folder = _images(tmp_path / "images", 2)
    study = create_study(folder, tmp_path / "s.sqlite", readers=1, arms=("unassisted",))
    with ReaderSession(study, 1) as session:
        case = session.next_case()
        session.answer(case, 0)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,level\nelsewhere,1\n")
    with pytest.raises(StudyError, match="no answered case has a reference label"):
        summarize(study, labels)
    labels.write_text("image,level\n0_left,0\n1_left,0\n")
    row, reader_row = summarize(study, labels, n_boot=10)
    assert (row["group"], reader_row["group"], reader_row["reader"]) == ("arm", "reader", 1)
    assert row["n"] == 1 and 0.0 <= row["seconds_mean"] < 5.0
    assert (
        main(["study", "summary", str(tmp_path / "missing.sqlite"), "--reference", str(labels)])
        == 2
    )
