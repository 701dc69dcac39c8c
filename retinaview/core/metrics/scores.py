"""Every figure of one explanation of one image, as one JSON-ready record: what ``retinaview compare`` keeps
per image and method, and what a viewer shows under a map.

Per explained class: the deletion and insertion AUCs (`faithfulness`), the ROAD scores (`road`) and, when
lesion masks are given, the localisation figures per lesion type (`localisation`). Per explanation: the
method's own check, its wall time and peak memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch import nn

from retinaview.core.common.result import Explanation
from retinaview.core.metrics.faithfulness import (
    DEFAULT_BLUR_SIGMA,
    DEFAULT_STEPS,
    perturbation_curves,
)
from retinaview.core.metrics.localisation import localisation_per_type
from retinaview.core.metrics.road import DEFAULT_FRACTIONS, DEFAULT_NOISE, road_curves


@dataclass(frozen=True)
class Settings:
    """How the metrics are computed (part of a cached result's key)."""

    steps: int = DEFAULT_STEPS
    fills: tuple[str, ...] = ("gray", "blur")
    blur_sigma: float = DEFAULT_BLUR_SIGMA
    road: bool = True
    road_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    road_noise: float = DEFAULT_NOISE
    tolerance: int = 0
    batch: int | None = None

    def key(self) -> dict[str, Any]:
        """JSON-ready form, without the batch size (which does not change the numbers)."""
        d = asdict(self)
        d.pop("batch")
        d["fills"] = list(self.fills)
        d["road_fractions"] = list(self.road_fractions)
        return d


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def score_class(
    model: nn.Module,
    pre: Any,
    relevance: np.ndarray,
    target: int,
    masks: dict[str, np.ndarray] | None,
    settings: Settings,
) -> dict[str, Any]:
    """The figures of one class's map.

    Parameters
    ----------
    model : torch.nn.Module
        The explained classifier.
    pre : Preprocessed
        The model's view of the image (``image`` in [0, 1], ``fov``).
    relevance : numpy.ndarray
        (H, W) the map at model input resolution.
    target : int
        The class explained.
    masks : dict of str to numpy.ndarray, optional
        (H, W) bool lesion masks in model space, by lesion type.
    settings : Settings
        How to compute.

    Returns
    -------
    dict
        ``metrics`` (name -> value; None where undefined), ``curves`` (name -> list of probabilities) and
        ``localisation`` (lesion type -> figures).
    """
    from retinaview.core.models.inputs import to_input

    fov = np.asarray(pre.fov, bool)
    x = to_input(model, pre.image)
    metrics: dict[str, float | None] = {}
    curves: dict[str, list[float]] = {}
    for c in perturbation_curves(
        model,
        x,
        relevance,
        fov,
        target,
        fills=settings.fills,
        steps=settings.steps,
        blur_sigma=settings.blur_sigma,
        batch=settings.batch,
    ):
        metrics[f"{c.mode}_{c.fill}"] = _finite(c.auc)
        curves[f"{c.mode}_{c.fill}"] = [float(p) for p in c.probs]
    if settings.road:
        for r in road_curves(
            model,
            pre.image,
            relevance,
            fov,
            target,
            fractions=settings.road_fractions,
            noise=settings.road_noise,
            batch=settings.batch,
        ):
            metrics[f"road_{r.order}"] = _finite(r.score)
            curves[f"road_{r.order}"] = [float(p) for p in r.probs]
    loc = {}
    if masks:
        for kind, figures in localisation_per_type(
            relevance, masks, fov, settings.tolerance
        ).items():
            loc[kind] = {k: _finite(v) for k, v in figures.items()}
    return {"metrics": metrics, "curves": curves, "localisation": loc}


def score_explanation(
    model: nn.Module,
    pre: Any,
    result: Explanation,
    masks: dict[str, np.ndarray] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """`score_class` for every class the explanation computed, with its check and time.

    Returns
    -------
    dict
        ``method``, ``predicted``, ``probs``, ``check_name``, ``check``, ``seconds`` and ``classes``
        (str(class) -> `score_class`'s record).
    """
    settings = settings or Settings()
    classes = result.classes or tuple(range(result.maps.shape[0]))
    out = {
        "method": result.method,
        "predicted": result.grade,
        "probs": [float(p) for p in result.probs],
        "check_name": result.check_name,
        "check": _finite(result.check),
        "seconds": float(result.seconds),
        "classes": {},
    }
    for c in classes:
        out["classes"][str(int(c))] = score_class(
            model, pre, result.maps[c], int(c), masks, settings
        )
    return out
