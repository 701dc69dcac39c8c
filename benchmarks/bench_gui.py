"""GUI figures, printed (not timed tests): ``python -m benchmarks.bench_gui [--quick]``.

1. time from process start to the main window on screen (real engine, torch not yet loaded);
2. slider-to-repaint latency (median, p95) with 640 px and 2000 px photographs;
3. longest GUI-thread stall while the real engine loads torch and explains an image (a 5 ms QTimer probe);
4. switching to an image whose result is cached (request -> result shown and painted);
5. resident memory growth after browsing 200 images (numpy stand-in engine, default cache cap).
Targets (issue 4): < 1.5 s, < 16 ms, < 50 ms, < 50 ms, growth < 200 MB. Runs offscreen by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHOW_SCRIPT = """
import time
from PySide6.QtCore import QTimer
from retinaview.ui.app import ViewOptions, application, create_window
from retinaview.commands.view import make_engine
app = application()
window = create_window(ViewOptions(screenshot="-"), make_engine("torch", "default"))
def shown():
    print(time.time() - T0, window.isVisible(), flush=True)
    window.close()
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def time_to_window(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.time()
        code = f"T0 = {t0!r}\n" + SHOW_SCRIPT
        env = {**os.environ, "RETINAVIEW_SETTINGS_DIR": tempfile.gettempdir()}
        res = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
        )
        seconds, visible = res.stdout.split()[:2]
        if visible != "True":
            raise RuntimeError("the window was not shown")
        out.append(float(seconds))
    return out


def stall_probe():
    """A 5 ms QTimer and its list of gaps: the longest gap is the longest GUI-thread stall."""
    from PySide6.QtCore import QTimer

    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=5)
    timer.timeout.connect(tick)
    return timer, gaps, last


def make_window(backend, settings_dir: str):
    os.environ["RETINAVIEW_SETTINGS_DIR"] = settings_dir
    from retinaview.engine.worker import Engine
    from retinaview.ui.app import application
    from retinaview.ui.main_window import MainWindow

    app = application()
    engine = Engine(backend)
    window = MainWindow(engine, restore=False)
    window.show()
    return app, window


def wait_for(app, condition, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark step did not finish")
        app.processEvents()
        time.sleep(0.001)


def write_images(folder: Path, n: int, size: int) -> list[Path]:
    import numpy as np
    from PIL import Image
    from skimage import data
    from skimage.transform import resize

    base = (resize(data.retina(), (size, size), anti_aliasing=True) * 255).astype(np.uint8)
    paths = []
    for k in range(n):
        p = folder / f"img{k:04d}.jpg"
        Image.fromarray(np.roll(base, 7 * k, axis=1)).save(p, quality=90)
        paths.append(p)
    return paths


def slider_latency(app, window, steps: int = 60) -> tuple[float, float]:
    slider = window.controls.threshold
    viewport = window.viewer.single.viewport()
    times = []
    for k in range(steps):
        t0 = time.perf_counter()
        slider.setValue(10 + (k % 30))
        viewport.repaint()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.95 * (len(times) - 1))] * 1e3


def open_and_wait(app, window, folder: Path) -> None:
    shown = []
    window.resultShown.connect(shown.append)
    window.open_path(folder)
    wait_for(app, lambda: bool(shown))
    window.resultShown.disconnect(shown.append)


def bench_slider_and_switch(tmp: Path, settings: str) -> None:
    from tests.fake_backend import FakeBackend

    app, window = make_window(FakeBackend(input_size=640), settings)
    with _started(app, window.engine):
        for size in (640, 2000):
            folder = tmp / f"photos{size}"
            folder.mkdir()
            write_images(folder, 3, size)
            open_and_wait(app, window, folder)
            med, p95 = slider_latency(app, window)
            print(f"slider -> repaint, {size} px photo: median {med:.1f} ms, p95 {p95:.1f} ms")
        # Cached switch: every image of the last folder once, then time going back and forth.
        entries = window.browser.model.entries()
        for e in entries[1:]:
            shown = []
            window.resultShown.connect(shown.append)
            window.browser.select_path(e.path)
            wait_for(app, lambda shown=shown: bool(shown))
            window.resultShown.disconnect(shown.append)
        times = []
        for k in range(20):
            shown = []
            window.resultShown.connect(shown.append)
            t0 = time.perf_counter()
            window.browser.select_path(entries[k % len(entries)].path)
            wait_for(app, lambda shown=shown: bool(shown))
            window.viewer.single.viewport().repaint()
            times.append(time.perf_counter() - t0)
            window.resultShown.disconnect(shown.append)
        times.sort()
        print(
            f"cached image switch (2000 px): median {statistics.median(times) * 1e3:.1f} ms, "
            f"max {times[-1] * 1e3:.1f} ms"
        )
    window.close()


class _started:
    def __init__(self, app, engine) -> None:
        self.app, self.engine = app, engine

    def __enter__(self):
        loaded = []
        self.engine.modelLoaded.connect(loaded.append)
        self.engine.start()
        wait_for(self.app, lambda: bool(loaded))
        return self.engine

    def __exit__(self, *exc) -> None:
        return None


def bench_rss(tmp: Path, settings: str, n: int) -> None:
    from tests.fake_backend import FakeBackend

    folder = tmp / "browse"
    folder.mkdir()
    write_images(folder, n, 640)
    app, window = make_window(FakeBackend(input_size=640), settings)
    with _started(app, window.engine):
        open_and_wait(app, window, folder)
        wait_for(app, lambda: not window.progress.isVisible())
        before = rss_mb()
        for _ in range(n - 1):
            shown = []
            window.resultShown.connect(shown.append)
            window.browser.move(1)
            wait_for(app, lambda shown=shown: bool(shown))
            window.resultShown.disconnect(shown.append)
        after = rss_mb()
    cache = window.engine.cache
    print(
        f"RSS browsing {n} images (640 px, stand-in engine): {before:.0f} MB -> {after:.0f} MB "
        f"(growth {after - before:.0f} MB; cache {len(cache)} results, {cache.nbytes / 2**20:.0f} MB)"
    )
    window.close()


def bench_stall(tmp: Path, settings: str) -> None:
    """The real engine: torch import, model load and one explanation, while a 5 ms timer ticks."""
    from retinaview.engine.backend import TorchBackend

    folder = tmp / "stall"
    folder.mkdir()
    write_images(folder, 1, 1000)
    app, window = make_window(TorchBackend(), settings)
    timer, gaps, last = stall_probe()
    timer.start()
    shown = []
    window.resultShown.connect(shown.append)
    t0 = time.perf_counter()
    window.engine.start()
    window.open_path(folder)
    wait_for(app, lambda: bool(shown), timeout=300)
    timer.stop()
    gaps.sort()
    print(
        f"GUI stall while the engine loads torch + model and explains (1000 px, "
        f"{time.perf_counter() - t0:.1f} s): longest {gaps[-1] * 1e3:.0f} ms, "
        f"p99 {gaps[int(0.99 * (len(gaps) - 1))] * 1e3:.0f} ms over {len(gaps)} ticks"
    )
    window.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer runs, 50 images instead of 200")
    p.add_argument("--skip-torch", action="store_true", help="skip the figures that load torch")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        settings = str(tmp / "settings")
        if not args.skip_torch:
            runs = time_to_window(1 if args.quick else 3)
            print(
                f"time to window shown: {min(runs):.2f} s best, {max(runs):.2f} s worst of {len(runs)}"
            )
        bench_slider_and_switch(tmp, settings)
        bench_rss(tmp, settings, 50 if args.quick else 200)
        if not args.skip_torch:
            bench_stall(tmp, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
