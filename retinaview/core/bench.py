"""Benchmark: exact RF score propagation against a plain forward pass, a naive loop and Captum.

Prints medians of repeated runs on the same image and model (ratios within one run: the machine is noisy).
Captum's LayerGradientXActivation takes a list of layers, so the fair Captum figure is one call per class
over all layers (K calls); a batched call (the image repeated K times, one target each) and one call per
layer and class are printed beside it.
Run: ``retinaview bench [--repeat 5] [--model default] [--no-captum]`` or ``make bench``.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

HIDDEN = "all classes, all layers, hidden space"
FULL = "all classes, mapped to input (total map)"
CAPTUM_PER_CLASS = "Captum, all layers in one call, one call per class"
CAPTUM_BATCHED = "Captum, all layers and classes in one call (batch of K)"
CAPTUM_PER_LAYER = "Captum, one call per layer and class"


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds (all threads of this process) of ``repeat`` runs.

    CPU time is the steadier figure when other processes share the cores.

    Parameters
    ----------
    fn : callable
        The work to time, called without arguments.
    repeat : int
        Number of runs.

    Returns
    -------
    tuple of float
        (median wall seconds, median CPU seconds).
    """
    wall, cpu = [], []
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def naive_loop(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str]
) -> list[list[torch.Tensor]]:
    """A forward and a backward per class, keeping S_i of every layer: what a hand-written loop does.

    Parameters
    ----------
    model : torch.nn.Module
        The grader, with a ``spec``.
    x : torch.Tensor
        (1, 3, H, W) normalised input.
    layers : sequence of str
        Names of the explained layers.

    Returns
    -------
    list of list of torch.Tensor
        Per class, gradient x activation summed over channels, of the input and of every layer.
    """
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


def captum_per_layer(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str]
) -> list[torch.Tensor]:
    """Captum's LayerGradientXActivation called once per layer and class (layers x classes calls).

    Parameters
    ----------
    model : torch.nn.Module
        The grader, with a ``spec``.
    x : torch.Tensor
        (1, 3, H, W) normalised input.
    layers : sequence of str
        Names of the explained layers.

    Returns
    -------
    list of torch.Tensor
        Channel-summed attribution of every (layer, class).
    """
    from captum.attr import LayerGradientXActivation

    modules = dict(model.named_modules())
    out = []
    for n in layers:
        lgxa = LayerGradientXActivation(model, modules[n])
        for c in range(model.spec.num_classes):
            out.append(lgxa.attribute(x, target=c).sum(1))
    return out


def captum_per_class(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str]
) -> list[list[torch.Tensor]]:
    """Captum's LayerGradientXActivation over the list of all layers, one call per class.

    The fastest way a Captum user writes "every layer, every class" for one image: a call takes a list of
    layers and returns one attribution per layer from one forward and one backward pass.

    Parameters
    ----------
    model : torch.nn.Module
        The grader, with a ``spec``.
    x : torch.Tensor
        (1, 3, H, W) normalised input.
    layers : sequence of str
        Names of the explained layers.

    Returns
    -------
    list of list of torch.Tensor
        Per class, the channel-summed attribution of every layer.
    """
    from captum.attr import LayerGradientXActivation

    modules = dict(model.named_modules())
    lgxa = LayerGradientXActivation(model, [modules[n] for n in layers])
    return [[a.sum(1) for a in lgxa.attribute(x, target=c)] for c in range(model.spec.num_classes)]


def captum_batched(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> list[torch.Tensor]:
    """One LayerGradientXActivation call over all layers with the image repeated once per class.

    Parameters
    ----------
    model : torch.nn.Module
        The grader, with a ``spec``.
    x : torch.Tensor
        (1, 3, H, W) normalised input.
    layers : sequence of str
        Names of the explained layers.

    Returns
    -------
    list of torch.Tensor
        Per layer, (K, h, w) channel-summed attributions, row c for class c.
    """
    from captum.attr import LayerGradientXActivation

    modules = dict(model.named_modules())
    k = model.spec.num_classes
    lgxa = LayerGradientXActivation(model, [modules[n] for n in layers])
    attrs = lgxa.attribute(x.expand(k, -1, -1, -1), target=list(range(k)))
    return [a.sum(1) for a in attrs]


def main(argv: list[str] | None = None) -> int:
    """Time every row on scikit-image's retina photograph and print the table and the Captum ratios.

    Parameters
    ----------
    argv : list of str, optional
        ``--model``, ``--repeat``, ``--no-captum``; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code 0.
    """
    from skimage import data

    from retinaview.core.api import load_model
    from retinaview.core.explain.methods import explain_rfscore, layer_rfs
    from retinaview.core.explain.rfscore import decompose
    from retinaview.core.models.inputs import to_input
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
            HIDDEN,
            median_time(lambda: decompose(model, x, layers, spec.classifier), args.repeat),
        )
    )
    rows.append(
        (
            FULL,
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
            import captum  # noqa: F401
        except ImportError:
            print("captum not installed: skipping its rows")
        else:
            slow = max(1, min(args.repeat, 2))
            rows.append(
                (
                    CAPTUM_PER_CLASS,
                    median_time(lambda: captum_per_class(model, x, layers), args.repeat),
                )
            )
            rows.append(
                (CAPTUM_BATCHED, median_time(lambda: captum_batched(model, x, layers), args.repeat))
            )
            rows.append(
                (CAPTUM_PER_LAYER, median_time(lambda: captum_per_layer(model, x, layers), slow))
            )
    print(
        f"model {spec.arch} ({spec.source}); input {tuple(x.shape)}; {len(layers)} explained layers; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'what':<58} {'wall s':>8} {'x fwd':>7} {'CPU s':>8} {'x fwd':>7}")
    for name, (wall, cpu) in rows:
        print(f"{name:<58} {wall:>8.3f} {wall / t_fwd[0]:>7.2f} {cpu:>8.3f} {cpu / t_fwd[1]:>7.2f}")
    timed = dict(rows)
    for name in (CAPTUM_PER_CLASS, CAPTUM_BATCHED, CAPTUM_PER_LAYER):
        if name not in timed:
            continue
        wall, cpu = timed[name]
        for ours, label in (
            (FULL, "all classes mapped to input"),
            (HIDDEN, "all classes hidden space"),
        ):
            print(
                f"{name} / retinaview {label}: {wall / timed[ours][0]:.1f}x wall, "
                f"{cpu / timed[ours][1]:.1f}x CPU"
            )
    print(f"peak RSS of this process through the retinaview rows: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
