"""Review store throughput, printed (not a timed test): ``python -m benchmarks.bench_review_store [N]``.

Commits per second of `ReviewStore.grade` (one durable transaction each: WAL, synchronous=FULL), of a
change of an existing grade (history with before and after), and of `undo`, on a fresh database in a
temporary folder (the machine's disk and its fsync decide the figure).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from retinaview.core.common.review_store import ReviewStore


def run(n: int = 500) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ReviewStore(Path(tmp) / "bench.sqlite")
        store.reviewer = "bench"
        t0 = time.perf_counter()
        for i in range(n):
            store.grade(f"img{i}.png", i % 5, digest=f"{i:032x}", confidence=3, note="n")
        t1 = time.perf_counter()
        for i in range(n):
            store.grade(f"img{i}.png", (i + 1) % 5, digest=f"{i:032x}", confidence=3, note="n")
        t2 = time.perf_counter()
        for _ in range(n):
            store.undo()
        t3 = time.perf_counter()
        store.close()
    print(f"new grades: {n / (t1 - t0):8.1f} commits/s ({1000 * (t1 - t0) / n:.2f} ms each)")
    print(f"changes:    {n / (t2 - t1):8.1f} commits/s ({1000 * (t2 - t1) / n:.2f} ms each)")
    print(f"undo:       {n / (t3 - t2):8.1f} commits/s ({1000 * (t3 - t2) / n:.2f} ms each)")


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
