"""Benchmark: every explanation method against a forward pass, and integrated gradients against Captum.

One run, one model, one photograph (scikit-image's fundus photograph through the model's preprocessing), all
five classes; every figure is a ratio to a plain forward pass measured in the same run (the machine is shared
and noisy), wall-clock and CPU time. Integrated gradients is compared with Captum's `IntegratedGradients` at
its defaults (50 steps, Gauss-Legendre; internal batches of 5 images to bound its memory): Captum is run for
the predicted class only and its time multiplied by the number of classes (Captum attributes one target per
call, so five classes cost five calls); completeness errors are compared on that class. Peak RSS is taken
before Captum runs. Run: ``retinaview bench --methods [--ig-steps 50] [--no-captum]``.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float, object]:
    """Median wall-clock and CPU seconds of ``repeat`` runs, and the last run's result."""
    wall, cpu = [], []
    out = None
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), out


def captum_ig(model, x, baseline, target: int, steps: int = 50):
    """Captum's IntegratedGradients with its default quadrature; returns (attr, completeness error)."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(model)
    attr = ig.attribute(x, baseline, target=target, n_steps=steps, internal_batch_size=5)
    with torch.no_grad():
        f = model(torch.cat([x, baseline]))[:, target].double()
    delta = float(f[0] - f[1])
    return attr, abs(float(attr.double().sum()) - delta) / abs(delta)


def main(argv: list[str] | None = None) -> int:
    from skimage import data

    from retinaview.core.api import load_model
    from retinaview.core.explain.ig import make_baseline
    from retinaview.core.explain.methods import run_method, to_input
    from retinaview.core.preprocess import preprocess

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast methods")
    parser.add_argument("--ig-steps", type=int, default=50)
    parser.add_argument("--no-captum", action="store_true")
    args = parser.parse_args(argv)

    model = load_model(args.model, device="cpu")
    spec = model.spec
    pre = preprocess(data.retina(), spec.preprocessing, spec.input_size)
    x = to_input(model, pre.image)
    n = spec.num_classes

    def forward():
        with torch.no_grad():
            model(x)

    forward()
    fwd_wall, fwd_cpu, _ = timed(forward, max(args.repeat, 3))
    rows: list[tuple[str, float, float, str]] = []

    def row(name: str, wall: float, cpu: float, note: str = "") -> None:
        rows.append((name, wall, cpu, note))

    row("plain forward (no graph)", fwd_wall, fwd_cpu, "")
    run_method("saliency", model, x)  # the folded copy is made once per model, outside the timing
    for name, params, target in (
        ("saliency", {}, "<= 6"),
        ("gradxinput", {}, ""),
        ("gradcam", {}, "<= 2"),
        ("cam", {}, "<= 1.2"),
    ):
        wall, cpu, ex = timed(
            lambda name=name, params=params: run_method(name, model, x, **params), args.repeat
        )
        check = "" if np.isnan(ex.check) else f"{ex.check_name} {ex.check:.1e}"
        row(f"{name}, {n} classes", wall, cpu, f"target {target} x fwd; {check}".strip("; "))

    partial_at: list[float] = []
    t_start = [0.0]

    def on_partial(_ex) -> None:
        partial_at.append(time.perf_counter() - t_start[0])

    def ours():
        t_start[0] = time.perf_counter()
        return run_method("ig", model, x, steps=args.ig_steps, on_partial=on_partial)

    ig_wall, ig_cpu, ig = timed(ours)
    completeness = ig.params["completeness"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pred = ig.grade
    row(
        f"ig, {n} classes, {args.ig_steps} Gauss-Legendre steps",
        ig_wall,
        ig_cpu,
        f"completeness {min(completeness):.3f}-{max(completeness):.3f} "
        f"(class {pred}: {completeness[pred]:.3f}); "
        f"{ig.params['forwards']} images forward",
    )
    if partial_at:
        row(
            "ig, predicted class shown after",
            partial_at[0],
            float("nan"),
            f"{partial_at[0] / ig_wall:.0%} of ig",
        )

    captum = None
    if not args.no_captum:
        try:
            base = make_baseline(model, x, "halfgray")
            wall, cpu, (_, err) = timed(lambda: captum_ig(model, x, base, pred))
            captum = (wall * n, cpu * n, err)
            row(
                f"Captum IntegratedGradients, 50 steps, class {pred} x {n}",
                wall * n,
                cpu * n,
                f"completeness {err:.3f} on class {pred} (ours {completeness[pred]:.3f})",
            )
        except ImportError:
            print("captum not installed: skipping its row")

    print(
        f"model {spec.arch} ({spec.source}); input {tuple(x.shape)}; torch threads {torch.get_num_threads()}"
    )
    print(f"{'what':<50} {'wall s':>8} {'x fwd':>7} {'CPU s':>8} {'x fwd':>7}  note")
    for name, wall, cpu, note in rows:
        cpu_s = "" if np.isnan(cpu) else f"{cpu:>8.2f} {cpu / fwd_cpu:>7.2f}"
        print(f"{name:<50} {wall:>8.2f} {wall / fwd_wall:>7.2f} {cpu_s:>16}  {note}")
    if captum is not None:
        print(
            f"Captum ({n} classes, scaled from one) / retinaview ig: {captum[0] / ig_wall:.1f}x wall, "
            f"{captum[1] / ig_cpu:.1f}x CPU; completeness on class {pred}: Captum {captum[2]:.3f}, "
            f"retinaview {completeness[pred]:.3f}"
        )
    print(f"peak RSS of this process through the retinaview rows (before Captum): {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
