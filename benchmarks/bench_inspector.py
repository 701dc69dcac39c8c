"""Layer inspector figures, printed (not timed tests): ``python -m benchmarks.bench_inspector [--real]``.

On an image whose explanation is computed (layers kept), at 640 px, for every layer:

1. selecting a layer already mapped (the usual case: the shown layer's neighbours are mapped ahead):
   ``set_layer`` -> ten maps drawn and the view repainted, on the GUI thread. Target (issue 5): < 100 ms.
2. selecting a layer not mapped yet: the same, including the mapping in the inspector's thread (the GUI
   thread stays free meanwhile; its longest stall is printed too).
3. the mapping alone (S_i and S_k of five classes to input space, plus the index images).

Median over layers. ``--real``: the paper17 model through the torch engine (16 layers, one explanation of
10-20 s on a busy CPU first); default: the numpy stand-in (4 layers), seconds in all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchmarks.bench_gui import make_window, stall_probe, wait_for, write_images


def run(real: bool, size: int = 640) -> int:
    if real:
        from retinaview.engine.backend import TorchBackend

        backend = TorchBackend()
    else:
        from tests.fake_backend import FakeBackend

        backend = FakeBackend(input_size=size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        write_images(folder, 1, size)
        app, window = make_window(backend, str(Path(tmp) / "settings"))
        window.resize(1600, 1000)
        window.engine.start()
        wait_for(app, lambda: window.engine.model_info is not None, 300)
        window.inspector_action.setChecked(True)
        inspector = window._inspector
        t0 = time.perf_counter()
        window.open_path(folder)
        wait_for(app, inspector.ready, 600)
        print(
            f"explanation with layers: {time.perf_counter() - t0:.1f} s ({window.engine.model_info.arch})"
        )
        from retinaview.engine.layers import walk_order

        numbers = walk_order(inspector.ex)
        viewport = inspector.grid.viewport()
        # Cold: nothing mapped ahead (empty the cache first, so every layer is mapped on demand).
        inspector.mapper.cache.clear()
        cold, stalls, mapping = [], [], []
        timer, gaps, last = stall_probe()
        for n in numbers[::-1]:
            inspector.mapper.cache.clear()
            gaps.clear()
            last[0] = time.perf_counter()
            timer.start()
            t0 = time.perf_counter()
            inspector.set_layer(n)
            wait_for(app, inspector.ready, 120)
            viewport.repaint()
            cold.append(time.perf_counter() - t0)
            timer.stop()
            stalls.append(max(gaps, default=0.0))
            mapping.append(inspector.maps.seconds)
        # Warm: every layer mapped (as after a walk-through); selecting only swaps images and tables.
        for n in numbers:
            inspector.set_layer(n)
            wait_for(app, inspector.ready, 120)
        warm = []
        for _ in range(3):
            for n in numbers:
                t0 = time.perf_counter()
                inspector.set_layer(n)
                assert inspector.ready()
                viewport.repaint()
                warm.append(time.perf_counter() - t0)
        window.close()

    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1e3:.1f} ms, max {max(values) * 1e3:.1f} ms"

    print(f"{len(numbers)} layers at {size} px, five classes, S_i and S_k (ten maps) per layer")
    print(f"select a mapped layer -> repainted:        {ms(warm)}   (target < 100 ms)")
    print(f"select an unmapped layer -> repainted:     {ms(cold)}")
    print(f"  of which mapping in the mapper thread:   {ms(mapping)}")
    print(f"  longest GUI-thread stall meanwhile:      {ms(stalls)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="paper17 through the torch engine")
    args = parser.parse_args(argv)
    return run(args.real)


if __name__ == "__main__":
    sys.exit(main())
