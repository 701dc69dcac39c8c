"""Deletion and insertion speed: ``python -m benchmarks.bench_metrics [--size S] [--steps N] [--images K]``.

Times, on one run of this machine:

- ours: deletion and insertion (half-gray fill, ``--steps`` steps each, inside the field of view) of one map
  per image, perturbed images batched by memory;
- the floor of any implementation that runs the model once per step at batch 1: 2 * (steps + 1) forward
  passes, measured;
- Quantus's PixelFlipping (the same deletion curve over the whole image, one forward pass per step) and ours
  with the same settings, when Quantus is installed, and their ratio.

The map is gradient x input of the predicted class, computed once and not timed. ``--size`` runs a model
that accepts other input sides at another one (paper17 needs its 640 px); fewer ``--steps`` keep a run short on
a busy CPU (the time per step is what matters: ours and the floor scale with steps + 1).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--size", type=int, help="input side (default: the model's)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--images", type=int, default=1)
    p.add_argument("--threads", type=int)
    p.add_argument("--no-quantus", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import dataclasses

    from retinaview.core.api import explain, load_model
    from retinaview.core.metrics.batching import choose_batch
    from retinaview.core.metrics.faithfulness import perturbation_curves
    from retinaview.core.models.inputs import to_input
    from retinaview.core.preprocess import preprocess
    from retinaview.core.synthetic import generate

    model = load_model(args.model, device="cpu")
    size = args.size or model.spec.input_size
    model.spec = dataclasses.replace(model.spec, input_size=size)
    cases = []
    for i in range(args.images):
        pre = preprocess(generate(7_000_001 + i, size=size).image, model.spec.preprocessing, size)
        result = explain(model, pre, method="gradxinput", classes="predicted")
        cases.append((to_input(model, pre.image), result.maps[result.grade], pre.fov, result.grade))
    x0 = cases[0][0]
    with torch.inference_mode():
        model(x0)
        t0 = time.perf_counter()
        model(x0)
        forward = time.perf_counter() - t0
    batch = choose_batch(model, x0)
    print(f"model {model.spec.arch} at {size} px, {torch.get_num_threads()} threads, batch {batch}")
    print(f"one forward pass at batch 1: {forward:.3f} s")

    t0 = time.perf_counter()
    for x, rel, fov, target in cases:
        perturbation_curves(model, x, rel, fov, target, fills=("gray",), steps=args.steps)
    ours = (time.perf_counter() - t0) / len(cases)
    floor = 2 * (args.steps + 1) * forward
    print(
        f"ours: deletion + insertion, {args.steps} steps each: {ours:.2f} s per image "
        f"(2 s target: {'met' if ours < 2 else 'not met'}); one forward per step would need "
        f"{floor:.2f} s ({floor / ours:.2f}x ours)"
    )
    if args.no_quantus:
        return 0
    try:
        import quantus
    except ImportError:
        print("Quantus is not installed: no comparison")
        return 0
    n_features = 3 * size * size
    # Quantus steps over the channel values (3 per pixel) and wants a step to divide the pixel count.
    if n_features % args.steps or (size * size) % (n_features // args.steps):
        print(
            f"Quantus needs steps that split 3 x {size}^2 channel values into steps dividing {size}^2 "
            "(a multiple of 3, e.g. 24 or 96 at 640 px): no comparison"
        )
        return 0
    full = np.ones((size, size), bool)
    xs = torch.cat([c[0] for c in cases])
    ys = np.array([c[3] for c in cases])
    rels = np.stack([c[1] for c in cases])[:, None].astype(np.float32)
    t0 = time.perf_counter()
    for x, rel, _, target in cases:
        perturbation_curves(model, x, rel, full, target, modes=("deletion",), steps=args.steps)
    ours_del = (time.perf_counter() - t0) / len(cases)
    metric = quantus.PixelFlipping(
        features_in_step=n_features // args.steps,
        perturb_baseline=0.0,
        normalise=False,
        disable_warnings=True,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric(
            model=model,
            x_batch=xs.numpy(),
            y_batch=ys,
            a_batch=rels,
            softmax=True,
            device="cpu",
            batch_size=1,
        )
    theirs = (time.perf_counter() - t0) / len(cases)
    print(
        f"deletion over the whole image, {args.steps} steps: ours {ours_del:.2f} s, Quantus "
        f"{quantus.__version__} PixelFlipping {theirs:.2f} s per image: {theirs / ours_del:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
