"""A grading process killed with SIGKILL at a random moment loses no grade it reported committed, and the
database opens cleanly afterwards."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

from retinaview.core.common.review_store import ReviewStore

N_IMAGES = 1000

# Grades as fast as the store allows and prints each image's index after `grade` returned (committed).
CHILD = """
import sys
from retinaview.core.common.review_store import ReviewStore
store = ReviewStore(sys.argv[1])
store.reviewer = "grader"
for i in range(int(sys.argv[2])):
    store.grade(f"img{i:04d}.png", i % 5, digest=f"{i:032x}", confidence=1 + i % 5, note=f"note {i}")
    print(i, flush=True)
print("done", flush=True)
"""


def test_sigkill_loses_no_reported_grade(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    kill_after = int(np.random.default_rng(seed).integers(1, N_IMAGES))
    db = tmp_path / "review.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(N_IMAGES)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    reported: list[int] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "done":
            break
        reported.append(int(line))
        if len(reported) == kill_after:
            proc.send_signal(signal.SIGKILL)
            break
    # Lines already in the pipe were printed after their commit too.
    reported += [int(x) for x in proc.stdout.read().split() if x != "done"]
    proc.wait(timeout=30)
    where = f"(seed {seed}, kill after {kill_after} reports)"
    assert proc.returncode == -signal.SIGKILL, where

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", where
    rows = dict(conn.execute("SELECT file, grade FROM records").fetchall())
    n_history = conn.execute("SELECT count(*) FROM history").fetchone()[0]
    conn.close()
    missing = [i for i in reported if f"img{i:04d}.png" not in rows]
    assert not missing, f"{len(missing)} reported grades lost {where}"
    assert all(rows[f"img{i:04d}.png"] == i % 5 for i in reported), where
    # At most the one grade in flight was committed without being reported; each with its history.
    assert len(reported) <= len(rows) <= len(reported) + 1, where
    assert n_history == len(rows), where
    store = ReviewStore(db)
    assert store.reviewer == "grader"
    assert store.first_ungraded([f"img{i:04d}.png" for i in range(N_IMAGES)]) == len(rows)
    store.close()
