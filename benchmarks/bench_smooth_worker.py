"""Smoothed display: GUI-thread time per image with the smoothing done on the GUI thread (as before) and with
the engine's worker smoothing each final result (``ExplainResult.smoothed``), printed from one run:
``python -m benchmarks.bench_smooth_worker``. Numpy stand-in engine, a 700 px photograph, 512 px maps; also
the worker's added time (`retinaview.engine.prepare.prepare_smoothed`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from retinaview.engine.prepare import prepare_smoothed
    from retinaview.engine.worker import Engine
    from retinaview.ui.overlay_view import OverlayView
    from retinaview.ui.view_state import ViewState
    from tests.fake_backend import FakeBackend

    app = QApplication.instance() or QApplication([])
    engine = Engine(FakeBackend(input_size=512))
    got = []
    engine.resultReady.connect(lambda r: None if r.partial else got.append(r))
    engine.start()
    while engine.model_info is None:
        app.processEvents()
        time.sleep(0.01)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.png"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (700, 700, 3), dtype=np.uint8)).save(path)
        engine.request(path)
        while not got:
            app.processEvents()
            time.sleep(0.01)
    result = got[0]
    view = OverlayView()
    view.resize(900, 700)
    view.show()

    def gui_ms(res, grid: bool) -> float:
        view.set_state(ViewState(smooth=True, grid=grid))
        times = []
        for i in range(5):
            # A new key each time: the view's own smoothing cache is per image.
            fresh = dataclasses.replace(res, key=(*res.key, str(i)))
            t0 = time.perf_counter()
            view.set_result(fresh)
            app.processEvents()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)) * 1000

    for grid in (False, True):
        before = gui_ms(dataclasses.replace(result, smoothed={}), grid)
        after = gui_ms(result, grid)
        print(f"{'grid  ' if grid else 'single'}: GUI thread per image: smoothing there {before:6.1f} ms, "
              f"smoothed in the worker {after:6.1f} ms, ratio {before / after:.1f}")  # fmt: skip
    t0 = time.perf_counter()
    prepare_smoothed(result.explanation)
    print(
        f"worker: prepare_smoothed of every kind and class {1000 * (time.perf_counter() - t0):.0f} ms"
    )
    engine.close()
    view.close()


if __name__ == "__main__":
    main()
