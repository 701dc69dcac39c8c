"""Contrastive maps: the map of class k minus the map of class j.

For RF score propagation (de la Torre et al., arXiv:1712.08107) the total map of class c sums to f_c exactly,
so the contrast sums to f_k - f_j: it explains the log-odds between two grades, log p_k / p_j, which is what a
grader weighs between neighbouring grades. For integrated gradients it sums to (f_k - f_j)(x) - (f_k - f_j)(x')
up to the quadrature's completeness error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.gradients import frozen_parameters
from retinaview.core.explain.ig import integrated_gradients, make_baseline

CONTRAST_METHODS = ("rfscore", "ig")


@dataclass
class ContrastResult:
    """``map``: (H, W) map of class ``k`` minus class ``j``; ``logits``: (C,); ``expected``: what the map
    should sum to (f_k - f_j for rfscore; the IG path's difference for ig); ``residual``: |sum(map) -
    expected| / max(|expected|, tiny)."""

    base: str
    k: int
    j: int
    map: np.ndarray
    logits: np.ndarray
    expected: float
    residual: float


def contrast(
    model: nn.Module,
    x: torch.Tensor,
    k: int | None = None,
    j: int | None = None,
    base: str = "rfscore",
    *,
    steps: int = 32,
    quadrature: str = "gausslegendre",
    baseline: str = "halfgray",
    sigma_factor: float | None = None,
) -> ContrastResult:
    """The map of class ``k`` minus the map of class ``j`` by method ``base`` ("rfscore" or "ig").

    Defaults: k the predicted grade, j the grade below it (grade 1 when grade 0 is predicted).
    """
    if base not in CONTRAST_METHODS:
        raise RetinaviewError(
            f"contrast of {base!r} is not offered (choices: {', '.join(CONTRAST_METHODS)})"
        )
    with torch.no_grad(), frozen_parameters(model):
        logits = model(x.detach()).reshape(-1).double().cpu().numpy()
    n = len(logits)
    k = int(np.argmax(logits)) if k is None else int(k)
    j = (k - 1 if k > 0 else 1) if j is None else int(j)
    for name, c in (("k", k), ("j", j)):
        if not 0 <= c < n:
            raise RetinaviewError(f"{name}={c} out of range (choices: 0-{n - 1})")
    if k == j:
        raise RetinaviewError(f"k and j are both {k}; choose two different classes")
    if base == "rfscore":
        from retinaview.core.explain.methods import explain_rfscore

        params = {} if sigma_factor is None else {"sigma_factor": sigma_factor}
        ex = explain_rfscore(model, x, classes=[k, j], **params)
        m = ex.total[k].astype(np.float64) - ex.total[j].astype(np.float64)
        expected = float(ex.logits[k]) - float(ex.logits[j])
    else:
        ref = make_baseline(model, x, baseline)
        res = integrated_gradients(
            model, x, ref, [k, j], steps=steps, quadrature=quadrature, preview_steps=0
        )
        maps = res.maps().astype(np.float64)
        m = maps[0] - maps[1]
        delta = res.logits - res.baseline_logits
        expected = float(delta[k] - delta[j])
    residual = abs(m.sum() - expected) / max(abs(expected), np.finfo(float).tiny)
    return ContrastResult(base, k, j, m, logits, expected, float(residual))
