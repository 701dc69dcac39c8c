"""Integrated gradients (Sundararajan et al. 2017) with shared forward passes and a completeness check.

attr_c = (x - x') * integral over alpha in [0, 1] of df_c/dx at x' + alpha (x - x'), by quadrature with
``steps`` points. Every class explained in the same pass shares each step's forward pass: one forward of a
batch of interpolated images, then one input-gradient backward per class. A preview of the predicted class
alone at a quarter of the steps comes first (by default), so a viewer can show it after a small part of the
work; then every class shares one pass at the full steps. The completeness error |sum(attr_c) - (f_c(x) - f_c(x'))| / |f_c(x) - f_c(x')| comes with the
maps: it says how well the quadrature resolved the path integral.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.gradients import class_order, frozen_parameters

QUADRATURES = ("gausslegendre", "trapezoid")
BASELINES = ("halfgray", "black", "blurred")
# Interpolated images per forward pass: about 2 M pixels keeps a 640 px batch of paper17 near 1 GB of graph.
BATCH_PIXELS = 2_000_000


def quadrature_rule(name: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in [0, 1] and weights summing to 1 of a ``steps``-point rule.

    ``gausslegendre``: Gauss-Legendre nodes mapped from [-1, 1] (exact for polynomials of degree
    2 * steps - 1). ``trapezoid``: ``steps`` equally spaced nodes including both ends, step 1 / (steps - 1).
    """
    if name == "gausslegendre":
        if steps < 1:
            raise RetinaviewError(f"steps={steps} out of range for gausslegendre (at least 1)")
        t, w = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (t + 1.0), 0.5 * w
    if name == "trapezoid":
        if steps < 2:
            raise RetinaviewError(f"steps={steps} out of range for trapezoid (at least 2)")
        w = np.full(steps, 1.0 / (steps - 1))
        w[[0, -1]] *= 0.5
        return np.linspace(0.0, 1.0, steps), w
    raise RetinaviewError(f"unknown quadrature {name!r} (choices: {', '.join(QUADRATURES)})")


def make_baseline(
    model: nn.Module, x: torch.Tensor, kind: str = "halfgray", blur_sigma: float | None = None
) -> torch.Tensor:
    """The reference image x' in the model's normalised input space.

    ``halfgray``: 0.5 in [0, 1] pixel space before normalisation (the choice of Sayres et al. 2019's IG maps);
    ``black``: 0 in pixel space; ``blurred``: the image under a Gaussian blur of ``blur_sigma`` pixels
    (default: input size / 32). Normalisation is per-channel affine, so blurring the normalised image equals
    normalising the blurred one.
    """
    spec = model.spec
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    if kind == "halfgray":
        return ((0.5 - mean) / std).expand_as(x).contiguous()
    if kind == "black":
        return ((0.0 - mean) / std).expand_as(x).contiguous()
    if kind == "blurred":
        sigma = float(blur_sigma) if blur_sigma is not None else max(x.shape[-2:]) / 32.0
        if sigma <= 0:
            raise RetinaviewError(f"blur_sigma={sigma} out of range (more than 0 pixels)")
        arr = x.detach().cpu().numpy()
        out = np.stack([gaussian_filter(arr[0, c], sigma, mode="reflect") for c in range(3)])
        return torch.from_numpy(out[None]).to(device=x.device, dtype=x.dtype)
    raise RetinaviewError(f"unknown baseline {kind!r} (choices: {', '.join(BASELINES)})")


@dataclass
class IGResult:
    """Integrated gradients of some classes of one image.

    ``attr``: (K, 3, H, W) attributions of the classes in ``order``; ``logits`` and ``baseline_logits``: (C,)
    scores of the image and of the baseline; ``completeness``: (K,) relative completeness error per class;
    ``forwards``: images sent through the model with a graph (one interpolated image counts one).
    """

    logits: np.ndarray
    baseline_logits: np.ndarray
    order: list[int]
    attr: torch.Tensor
    completeness: np.ndarray
    forwards: int

    def maps(self) -> np.ndarray:
        """(K, H, W) attributions summed over the colour channels."""
        return self.attr.sum(1).cpu().numpy()


def completeness_error(attr_sums: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """|sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')| per class (inf when the scores are equal)."""
    diff = np.abs(attr_sums - delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(delta) > 0, diff / np.abs(delta), np.where(diff > 0, np.inf, 0.0))


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    classes: Sequence[int] | str | None = None,
    *,
    steps: int = 32,
    quadrature: str = "gausslegendre",
    batch_size: int | None = None,
    preview_steps: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_partial: Callable[[IGResult], None] | None = None,
) -> IGResult:
    """Integrated gradients of the given classes, every class of a pass sharing its forward passes.

    Parameters
    ----------
    model : nn.Module
        Classifier in eval mode, (N, 3, H, W) -> (N, C) logits.
    x, baseline : torch.Tensor
        (1, 3, H, W) normalised image and reference.
    classes : sequence of int, "predicted", "all" or None
        Classes to attribute (default all, the predicted class first).
    steps : int
        Quadrature points.
    quadrature : {"gausslegendre", "trapezoid"}
        The rule; see `quadrature_rule`.
    batch_size : int, optional
        Interpolated images per forward pass (default: about 2 M pixels per batch).
    preview_steps : int, optional
        When more than one class is asked for, first attribute the first class of ``order`` (the predicted
        one) alone with this many steps (default ``steps // 4``; 0: no preview) and hand it to
        ``on_partial``; then every class shares one pass of ``steps`` steps. The preview costs about a
        quarter of one class's share, and the final pass needs no forward pass of its own per class.
    on_progress : callable, optional
        ``on_progress(done, total)`` after every batch of steps, in steps over all passes. Raising from it
        stops the computation there (how a superseded request is dropped).
    on_partial : callable, optional
        Gets the preview's `IGResult` (the first class alone, with its own completeness error).

    Returns
    -------
    IGResult
    """
    if x.shape[0] != 1 or baseline.shape != x.shape:
        raise ValueError("integrated_gradients expects one image and a baseline of the same shape")
    nodes, weights = quadrature_rule(quadrature, int(steps))
    if batch_size is None:
        batch_size = max(1, BATCH_PIXELS // (x.shape[-2] * x.shape[-1]))
    batch_size = max(1, int(batch_size))
    x = x.detach()
    baseline = baseline.detach()
    delta = x - baseline
    with torch.no_grad(), frozen_parameters(model):
        ends = model(torch.cat([x, baseline])).double().cpu().numpy()
    logits, base_logits = ends[0], ends[1]
    order = class_order(torch.from_numpy(logits), classes)
    if preview_steps is None:
        preview_steps = max(2 if quadrature == "trapezoid" else 1, int(steps) // 4)
    passes = [(order, nodes, weights)]
    if preview_steps > 0 and len(order) > 1:
        passes.insert(0, (order[:1], *quadrature_rule(quadrature, int(preview_steps))))
    total_steps = sum(len(n) for _, n, _ in passes)
    done_steps = 0
    forwards = 0
    result = None
    for group, pass_nodes, pass_weights in passes:
        alphas = torch.tensor(pass_nodes, dtype=x.dtype, device=x.device)
        w = torch.tensor(pass_weights, dtype=x.dtype, device=x.device)
        acc = torch.zeros((len(group), *x.shape[1:]), dtype=x.dtype, device=x.device)
        for s in range(0, len(alphas), batch_size):
            a = alphas[s : s + batch_size].reshape(-1, 1, 1, 1)
            with frozen_parameters(model), torch.enable_grad():
                xs = (baseline + a * delta).requires_grad_(True)
                out = model(xs)
                wb = w[s : s + batch_size]
                for j, c in enumerate(group):
                    (g,) = torch.autograd.grad(
                        (out[:, c] * wb).sum(), xs, retain_graph=j < len(group) - 1
                    )
                    acc[j] += g.sum(0)
            forwards += a.shape[0]
            done_steps += a.shape[0]
            del xs, out, g
            if on_progress is not None:
                on_progress(done_steps, total_steps)
        attr = delta * acc
        sums = attr.double().reshape(len(group), -1).sum(1).cpu().numpy()
        result = IGResult(
            logits=logits,
            baseline_logits=base_logits,
            order=list(group),
            attr=attr,
            completeness=completeness_error(sums, (logits - base_logits)[group]),
            forwards=forwards,
        )
        if on_partial is not None and len(group) < len(order):
            on_partial(result)
    assert result is not None
    return result
