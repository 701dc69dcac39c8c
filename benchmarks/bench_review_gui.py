"""Time from the grading key press to the grading panel being ready for the next image, printed (not a timed
test): ``python -m benchmarks.bench_review_gui [N] [SIDE]``.

N photographs of SIDE x SIDE random pixels (PNG files of about 3 * SIDE^2 bytes, like a fundus photograph) in a
temporary folder and a fresh review database there. For each image: press a grade key, then Enter; Enter
commits the grade (one durable SQLite transaction: WAL, synchronous=FULL) and asks for the next image, which
the panel gets ready (its record looked up by the file's content digest). Printed: median and 95th percentile
of that interval, and of `ReviewStore.grade` alone in the same run, so the ratio shows the panel's own cost.
The photograph and its map are drawn by the main window, outside this figure.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run(n: int = 100, side: int = 700) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from retinaview.core.common.review_session import ReviewSession
    from retinaview.core.common.review_store import ReviewStore
    from retinaview.ui.grading_panel import GradingPanel

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i in range(n):
            pixels = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:05d}_left.png", compress_level=0)
        size_mb = (folder / "00000_left.png").stat().st_size / 1e6
        store = ReviewStore(Path(tmp) / "review.sqlite", folder=folder)
        store.reviewer = "bench"
        files = sorted(folder.glob("*.png"))
        session = ReviewSession(store, files)
        panel = GradingPanel()
        panel.advanceRequested.connect(
            lambda: (
                panel.request_move(session.next_index())
                if session.next_index() is not None
                else None
            )
        )
        panel.open_session(session)
        panel.show()
        key_to_ready = []
        for i in range(n - 1):
            QTest.keyClick(panel, Qt.Key(Qt.Key.Key_0 + i % 5))
            t0 = time.perf_counter()
            QTest.keyClick(panel, Qt.Key.Key_Return)
            key_to_ready.append(time.perf_counter() - t0)
            assert session.index == i + 1
        panel.close()
        grade_only = []
        for i in range(n - 1):
            t0 = time.perf_counter()
            store.grade(files[i], (i + 1) % 5, digest=f"{i:032x}")
            grade_only.append(time.perf_counter() - t0)
        store.close()
        del app
    k = np.array(key_to_ready) * 1000
    g = np.array(grade_only) * 1000
    print(f"{n - 1} images of {side}x{side} px ({size_mb:.1f} MB each)")
    print(f"Enter -> ready for the next image: median {np.median(k):6.2f} ms, 95th pct "
          f"{np.percentile(k, 95):6.2f} ms")  # fmt: skip
    print(f"ReviewStore.grade alone:          median {np.median(g):6.2f} ms, 95th pct "
          f"{np.percentile(g, 95):6.2f} ms")  # fmt: skip
    print(f"ratio (median): {np.median(k) / np.median(g):.2f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    run(*args)
