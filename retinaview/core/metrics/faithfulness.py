"""Deletion and insertion curves (Petsiuk, Das and Saenko 2018, RISE): how fast the class probability falls
when the most relevant pixels are removed first, and how fast it rises when they are put back first.

Both run inside the field of view only: its pixels are ranked by the map (highest first, ties by position),
and step k of ``steps`` changes the first ``round(k * N / steps)`` of the N field-of-view pixels. Deletion
replaces them with the fill; insertion starts from the fill everywhere in the field of view and puts the
photograph's pixels back. The fills are ``"gray"`` (half-gray, 0.5 in every channel before normalisation) and
``"blur"`` (the photograph blurred with a Gaussian of ``blur_sigma`` pixels, as Petsiuk et al. do for
insertion). The area under each curve (trapezoid rule over the fraction changed, 0..1) is the figure: low for
deletion and high for insertion mean a faithful map.

All ``steps + 1`` perturbed images of a curve are built on the model's device from one rank image and
evaluated in as few forward passes as memory allows (`retinaview.core.metrics.batching`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.metrics.batching import batched_probs, choose_batch
from retinaview.core.models.registry import spec_of

FILLS = ("gray", "blur")
MODES = ("deletion", "insertion")
DEFAULT_STEPS = 100
# Petsiuk et al.'s insertion blur (kernel 11, sigma 5 at 224 px).
DEFAULT_BLUR_SIGMA = 5.0


@dataclass
class Curve:
    """One deletion or insertion curve of one class.

    Attributes
    ----------
    mode, fill : str
        ``"deletion"`` or ``"insertion"``; ``"gray"`` or ``"blur"``.
    fractions : numpy.ndarray
        (steps + 1,) share of the field-of-view pixels changed, 0..1.
    probs : numpy.ndarray
        (steps + 1,) the class probability after each step.
    auc : float
        Area under ``probs`` over ``fractions`` (trapezoid rule).
    """

    mode: str
    fill: str
    fractions: np.ndarray
    probs: np.ndarray
    auc: float


def relevance_rank(relevance: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """(H, W) int64 rank of every field-of-view pixel by relevance, 0 = most relevant; outside: a rank past
    the last (never changed).

    Raises
    ------
    RetinaviewError
        When the map has NaN or infinite values inside the field of view, or the field of view is empty.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    fov = np.asarray(fov, dtype=bool)
    if relevance.shape != fov.shape:
        raise RetinaviewError(
            f"map shape {relevance.shape} does not match the field of view {fov.shape}"
        )
    inside = np.flatnonzero(fov)
    if inside.size == 0:
        raise RetinaviewError("the field of view is empty")
    values = relevance.reshape(-1)[inside]
    if not np.isfinite(values).all():
        raise RetinaviewError("the map has NaN or infinite values inside the field of view")
    order = inside[np.argsort(-values, kind="stable")]
    rank = np.full(relevance.size, relevance.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank.reshape(relevance.shape)


def step_counts(n_pixels: int, steps: int) -> np.ndarray:
    """(steps + 1,) how many pixels are changed after each step: round(k * n / steps)."""
    if steps < 1:
        raise RetinaviewError(f"steps must be at least 1, not {steps}")
    return np.rint(np.arange(steps + 1) * (n_pixels / steps)).astype(np.int64)


def fill_image(
    x: torch.Tensor, fill: str, mean, std, blur_sigma: float = DEFAULT_BLUR_SIGMA
) -> torch.Tensor:
    """The fill for normalised input ``x`` (1, 3, H, W): half-gray, or ``x`` blurred (sigma in pixels)."""
    if fill == "gray":
        m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
        s = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
        return ((0.5 - m) / s).expand_as(x).clone()
    if fill == "blur":
        # Blurring commutes with the per-channel affine normalisation, so blur the normalised input.
        arr = x[0].detach().cpu().double().numpy()
        blurred = np.stack([ndimage.gaussian_filter(c, blur_sigma, mode="nearest") for c in arr])
        return torch.from_numpy(blurred).to(device=x.device, dtype=x.dtype).unsqueeze(0)
    raise RetinaviewError(f"unknown fill {fill!r} (choices: {', '.join(FILLS)})")


def perturbation_curves(
    model: nn.Module,
    x: torch.Tensor,
    relevance: np.ndarray,
    fov: np.ndarray,
    target: int,
    *,
    modes: tuple[str, ...] = MODES,
    fills: tuple[str, ...] = ("gray",),
    steps: int = DEFAULT_STEPS,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    batch: int | None = None,
) -> list[Curve]:
    """Deletion and/or insertion curves of class ``target`` for one map, one curve per (mode, fill).

    Parameters
    ----------
    model : torch.nn.Module
        A classifier with a ``spec`` (its ``mean`` and ``std`` give the half-gray fill).
    x : torch.Tensor
        (1, 3, H, W) the normalised input (`retinaview.core.models.inputs.to_input`).
    relevance : numpy.ndarray
        (H, W) the map; higher = more relevant to ``target``.
    fov : numpy.ndarray
        (H, W) bool field of view: only its pixels are ranked and changed.
    target : int
        The class whose probability is followed.
    modes, fills : tuple of str
        Subsets of `MODES` and `FILLS`.
    steps : int
        Steps per curve (the curve has ``steps + 1`` points).
    blur_sigma : float
        Gaussian sigma of the ``"blur"`` fill, in input pixels.
    batch : int, optional
        Images per forward pass (default: chosen from free memory).

    Returns
    -------
    list of Curve
        In the order of ``modes`` then ``fills``.
    """
    for m in modes:
        if m not in MODES:
            raise RetinaviewError(f"unknown mode {m!r} (choices: {', '.join(MODES)})")
    rank_np = relevance_rank(relevance, fov)
    counts_np = step_counts(int(np.count_nonzero(fov)), steps)
    rank = torch.from_numpy(rank_np).to(x.device).reshape(1, 1, *rank_np.shape)
    counts = torch.from_numpy(counts_np).to(x.device)
    batch = batch or choose_batch(model, x)
    fractions = counts_np / max(int(counts_np[-1]), 1)
    spec = spec_of(model)
    outside = torch.from_numpy(~np.asarray(fov, bool)).to(x.device).reshape(rank.shape)
    curves = []
    for mode in modes:
        for fill in fills:
            filler = fill_image(x, fill, spec.mean, spec.std, blur_sigma)
            # Deletion: changed pixels show the fill; insertion: changed pixels show the photograph again.
            changed_src, kept_src = (filler, x) if mode == "deletion" else (x, filler)
            kept_src = torch.where(outside, x, kept_src)

            def make(
                start: int, stop: int, changed_src=changed_src, kept_src=kept_src
            ) -> torch.Tensor:
                changed = rank < counts[start:stop].reshape(-1, 1, 1, 1)
                return torch.where(changed, changed_src, kept_src)

            probs = batched_probs(model, make, len(counts_np), batch, [target])[:, 0].numpy()
            auc = float(np.trapezoid(probs, fractions))
            curves.append(Curve(mode, fill, fractions, probs, auc))
    return curves
