"""Counterfactual images from integrated gradients (after Sayres et al. 2019's use of IG on fundus images).

From the IG map towards a target class (half-gray baseline), pixels with positive attribution move away from
the baseline and pixels with negative attribution move towards it, by a factor c, in [0, 1] pixel space:

    p_c = clip(0.5 + (p - 0.5) * (1 + c))          where attr > 0
    p_c = clip(0.5 + (p - 0.5) * max(0, 1 - c))    where attr < 0

so c = 0 is the image itself. All counterfactuals go through the model in one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.gradients import frozen_parameters
from retinaview.core.explain.ig import integrated_gradients, make_baseline

DEFAULT_FACTORS = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass
class CounterfactualResult:
    """``images``: (n, H, W, 3) float32 counterfactuals in [0, 1] pixel space, one per factor;
    ``difference``: (n, H, W, 3) counterfactual minus the image; ``probs``: (n, C) softmax of each;
    ``logits``: (n, C) their class scores; ``image_logits``: (C,) the image's; ``attr``: (H, W) the IG map
    towards ``target`` they were made from (summed over RGB)."""

    target: int
    factors: np.ndarray
    images: np.ndarray
    difference: np.ndarray
    probs: np.ndarray
    logits: np.ndarray
    image_logits: np.ndarray
    attr: np.ndarray
    completeness: float


def _pixels(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    spec = model.spec
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return x * std + mean, mean, std


def ig_counterfactuals(
    model: nn.Module,
    x: torch.Tensor,
    target: int | None = None,
    factors: Sequence[float] = DEFAULT_FACTORS,
    *,
    steps: int = 32,
    quadrature: str = "gausslegendre",
) -> CounterfactualResult:
    """Counterfactuals of one normalised (1, 3, H, W) image towards ``target`` (default: the grade above
    the predicted one, or the grade below for the highest grade), for each factor in ``factors``."""
    factors = np.asarray(list(factors), dtype=np.float64)
    if factors.size == 0 or (factors < 0).any() or not np.isfinite(factors).all():
        raise RetinaviewError("factors must be a non-empty list of finite numbers >= 0")
    baseline = make_baseline(model, x, "halfgray")
    with torch.no_grad(), frozen_parameters(model):
        logits = model(x.detach()).reshape(-1).double().cpu().numpy()
    n = len(logits)
    pred = int(np.argmax(logits))
    c = (pred + 1 if pred + 1 < n else pred - 1) if target is None else int(target)
    if not 0 <= c < n:
        raise RetinaviewError(f"target={c} out of range (choices: 0-{n - 1})")
    ig = integrated_gradients(
        model, x, baseline, [c], steps=steps, quadrature=quadrature, preview_steps=0
    )
    attr = ig.attr[0].sum(0)
    p, mean, std = _pixels(model, x.detach())
    sign = torch.sign(attr)
    f = torch.tensor(factors, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    scale = torch.where(sign > 0, 1 + f, torch.where(sign < 0, (1 - f).clamp_min(0), 1.0))
    images = (0.5 + (p - 0.5) * scale).clamp(0, 1)
    with torch.no_grad(), frozen_parameters(model):
        out = model((images - mean) / std).double()
    probs = torch.softmax(out, 1).cpu().numpy()
    to_hwc = (0, 2, 3, 1)
    return CounterfactualResult(
        target=c,
        factors=factors,
        images=images.permute(*to_hwc).float().cpu().numpy(),
        difference=(images - p).permute(*to_hwc).float().cpu().numpy(),
        probs=probs,
        logits=out.cpu().numpy(),
        image_logits=logits,
        attr=attr.cpu().numpy(),
        completeness=float(ig.completeness[0]),
    )
