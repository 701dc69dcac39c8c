"""Vessel segmentation and per-layer Grad-CAM figures, printed: ``python -m benchmarks.bench_vessels``.

For a DRIU (Maninis et al. 2016) of each width (0.25, the bundled model's, and 1.0, the paper's) with random
weights (the time does not depend on them), on a synthetic 640 px photograph, on the CPU with one and with
two threads:

1. ``segment``: preprocessing (the ``vessels`` chain) and one forward pass;
2. per-layer Grad-CAM (Selvaraju et al. 2017) of the whole image's summed vessel logit at all fourteen layers (ten ReLUs of the base, four side outputs)
   (one forward and one backward pass), with the segmentation;
3. RF score propagation of the same summed logit (de la Torre et al., arXiv:1712.08107), with ``--rfscore``.

The best of ``--repeats`` runs after one warm-up run; ratios are taken within this one run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def best_of(fn, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def vessel_model(width: float, size: int):
    from retinaview.core.models.registry import build_model

    torch.manual_seed(0)
    config = {"num_classes": 1, "width": width, "input_size": size, "task": "vessels"}
    model, spec = build_model("driu", config)
    model.spec = spec
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    from retinaview.core.explain.segmentation import vessel_gradcams, vessel_rfscore
    from retinaview.core.segment import segment
    from retinaview.core.synthetic import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=640, help="photograph and model input side")
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rfscore", action="store_true", help="time RF score propagation too")
    args = parser.parse_args(argv)

    photo = generate(7, size=args.size).image
    print(f"DRIU on a {args.size} px synthetic photograph, CPU, best of {args.repeats} (seconds)")
    header = f"{'width':>6} {'threads':>7} {'segment':>9} {'grad-cam':>9} {'ratio':>6}"
    if args.rfscore:
        header += f" {'rfscore':>9}"
    print(header)
    for width in args.widths:
        model = vessel_model(width, args.size)
        for threads in args.threads:
            torch.set_num_threads(threads)
            t_seg = best_of(lambda model=model: segment(model, photo), args.repeats)
            result = vessel_gradcams(model, photo)
            assert len(result.maps) == 14 and all(
                np.isfinite(m).all() for m in result.maps.values()
            )
            t_cam = best_of(lambda model=model: vessel_gradcams(model, photo), args.repeats)
            line = f"{width:>6.2f} {threads:>7d} {t_seg:>9.2f} {t_cam:>9.2f} {t_cam / t_seg:>6.2f}"
            if args.rfscore:
                t_rf = best_of(lambda model=model: vessel_rfscore(model, photo), args.repeats)
                line += f" {t_rf:>9.2f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
