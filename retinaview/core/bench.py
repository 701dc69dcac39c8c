"""Benchmark: exact RF score propagation against a plain forward pass, a naive loop and Captum.

Prints medians of repeated runs on the same image and model (ratios within one run: the machine is noisy).
Run: ``retinaview bench [--repeat 5] [--model default] [--no-captum]`` or ``make bench``.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
from collections.abc import Callable

import torch


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds (all threads of this process) of ``repeat`` runs.

    CPU time is the steadier figure when other processes share the cores.
    """
    wall, cpu = [], []
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def naive_loop(model, x, layers):
    """A forward and a backward per class, keeping S_i of every layer: what a hand-written loop does."""
    modules = dict(model.named_modules())
    out = []
    for c in range(model.spec.num_classes):
        acts = {}
        hooks = [
            modules[n].register_forward_hook(lambda m, i, o, n=n, acts=acts: acts.__setitem__(n, o))
            for n in layers
        ]
        xi = x.detach().requires_grad_(True)
        logits = model(xi)
        for h in hooks:
            h.remove()
        grads = torch.autograd.grad(logits[0, c], [xi, *acts.values()])
        out.append([(a * g).sum(1) for a, g in zip([xi, *acts.values()], grads, strict=True)])
    return out


def captum_loop(model, x, layers):
    """Captum's LayerGradientXActivation for every layer and class, the way a Captum user writes it."""
    from captum.attr import LayerGradientXActivation

    modules = dict(model.named_modules())
    out = []
    for n in layers:
        lgxa = LayerGradientXActivation(model, modules[n])
        for c in range(model.spec.num_classes):
            out.append(lgxa.attribute(x, target=c).sum(1))
    return out


def main(argv: list[str] | None = None) -> int:
    from skimage import data

    from retinaview.core.api import load_model
    from retinaview.core.explain.methods import explain_rfscore, layer_rfs, to_input
    from retinaview.core.explain.rfscore import decompose
    from retinaview.core.preprocess import preprocess

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-captum", action="store_true")
    args = parser.parse_args(argv)

    model = load_model(args.model, device="cpu")
    spec = model.spec
    pre = preprocess(data.retina(), spec.preprocessing, spec.input_size)
    x = to_input(model, pre.image)
    layers = list(spec.explained_layers)
    layer_rfs(model)  # traced once per model, not part of an explanation

    def forward():
        with torch.no_grad():
            model(x)

    forward()
    rows: list[tuple[str, tuple[float, float]]] = []
    t_fwd = median_time(forward, args.repeat)
    rows.append(("plain forward", t_fwd))
    rows.append(
        (
            "predicted class alone, hidden space",
            median_time(
                lambda: decompose(model, x, layers, spec.classifier, classes="predicted"),
                args.repeat,
            ),
        )
    )
    rows.append(
        (
            "predicted class alone, mapped to input",
            median_time(lambda: explain_rfscore(model, x, classes="predicted"), args.repeat),
        )
    )
    rows.append(
        (
            "all classes, all layers, hidden space",
            median_time(lambda: decompose(model, x, layers, spec.classifier), args.repeat),
        )
    )
    rows.append(
        (
            "all classes, mapped to input (total map)",
            median_time(lambda: explain_rfscore(model, x), args.repeat),
        )
    )
    peak_mb = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )  # before the naive loop and Captum
    rows.append(
        (
            "naive loop: forward + backward per class",
            median_time(lambda: naive_loop(model, x, layers), args.repeat),
        )
    )
    if not args.no_captum:
        try:
            rows.append(
                (
                    "Captum LayerGradientXActivation, every layer x class",
                    median_time(lambda: captum_loop(model, x, layers), max(1, min(args.repeat, 2))),
                )
            )
        except ImportError:
            print("captum not installed: skipping its row")
    print(
        f"model {spec.arch} ({spec.source}); input {tuple(x.shape)}; torch threads {torch.get_num_threads()}"
    )
    print(f"{'what':<54} {'wall s':>8} {'x fwd':>7} {'CPU s':>8} {'x fwd':>7}")
    for name, (wall, cpu) in rows:
        print(f"{name:<54} {wall:>8.3f} {wall / t_fwd[0]:>7.2f} {cpu:>8.3f} {cpu / t_fwd[1]:>7.2f}")
    full = dict(rows)["all classes, mapped to input (total map)"]
    if "Captum LayerGradientXActivation, every layer x class" in dict(rows):
        captum = dict(rows)["Captum LayerGradientXActivation, every layer x class"]
        print(
            f"Captum loop / retinaview full mapped decomposition: {captum[0] / full[0]:.1f}x wall, "
            f"{captum[1] / full[1]:.1f}x CPU"
        )
    print(f"peak RSS of this process through the retinaview rows: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
