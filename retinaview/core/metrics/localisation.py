"""Does the map point at the lesions? Four figures of one map against one ground-truth mask, inside the
field of view.

- Relevance mass accuracy (Arras, Osman and Samek 2022): the share of the map's relevance that falls inside
  the mask (positive relevance by default; ``use="abs"`` takes magnitudes).
- Relevance rank accuracy (same source): with K the mask's pixel count, the share of the K most relevant
  pixels that lie inside the mask.
- Pointing game (Zhang et al. 2018): 1 when the map's maximum lies inside the mask (grown by ``tolerance``
  pixels), else 0.
- AUC: the map's values as a detector of mask pixels against the other field-of-view pixels (the
  Mann-Whitney probability that a mask pixel outranks a background pixel; ties count one half).

Next to them, ``share``: the mask's share of the field of view, what a map that knows nothing reaches in
relevance mass and rank accuracy on average (an AUC of 0.5 is chance).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.stats import rankdata

from retinaview.core.common.errors import RetinaviewError

METRICS = ("mass", "rank", "pointing", "auc")


def _prepare(relevance, mask, fov) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    relevance = np.asarray(relevance, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    fov = np.ones(relevance.shape, bool) if fov is None else np.asarray(fov, dtype=bool)
    if not (relevance.shape == mask.shape == fov.shape):
        raise RetinaviewError(
            f"map {relevance.shape}, mask {mask.shape} and field of view {fov.shape} differ in shape"
        )
    if not np.isfinite(relevance[fov]).all():
        raise RetinaviewError("the map has NaN or infinite values inside the field of view")
    return relevance, mask & fov, fov


def relevance_mass(relevance, mask, fov=None, use: str = "positive") -> float:
    """Share of the relevance inside ``mask`` (``use``: ``"positive"`` part or ``"abs"``); NaN if none."""
    r, m, fov = _prepare(relevance, mask, fov)
    if use == "positive":
        r = np.clip(r, 0.0, None)
    elif use == "abs":
        r = np.abs(r)
    else:
        raise RetinaviewError(f"unknown relevance use {use!r} (choices: positive, abs)")
    total = r[fov].sum()
    return float(r[m].sum() / total) if total > 0 else float("nan")


def relevance_rank_accuracy(relevance, mask, fov=None) -> float:
    """Share of the K most relevant field-of-view pixels inside ``mask`` (K = mask pixels); NaN if empty."""
    r, m, fov = _prepare(relevance, mask, fov)
    k = int(m.sum())
    if k == 0:
        return float("nan")
    values, inside = r[fov], m[fov]
    top = np.argsort(-values, kind="stable")[:k]
    return float(inside[top].mean())


def pointing_game(relevance, mask, fov=None, tolerance: int = 0) -> float:
    """1.0 when the map's maximum in the field of view lies inside ``mask`` grown by ``tolerance`` pixels."""
    r, m, fov = _prepare(relevance, mask, fov)
    if not m.any():
        return float("nan")
    if tolerance > 0:
        m = ndimage.binary_dilation(m, ndimage.generate_binary_structure(2, 1), tolerance)
    values = np.where(fov, r, -np.inf)
    return float(m.reshape(-1)[int(np.argmax(values))])


def detection_auc(relevance, mask, fov=None) -> float:
    """ROC AUC of the map's values separating mask pixels from the other field-of-view pixels."""
    r, m, fov = _prepare(relevance, mask, fov)
    values, inside = r[fov], m[fov]
    pos = int(inside.sum())
    neg = inside.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(values)
    return float((ranks[inside].sum() - pos * (pos + 1) / 2) / (pos * neg))


def localisation(relevance, mask, fov=None, tolerance: int = 0) -> dict[str, float]:
    """Every figure of one map against one mask: ``mass``, ``rank``, ``pointing``, ``auc`` and ``share``."""
    _, m, fov = _prepare(relevance, mask, fov)
    return {
        "mass": relevance_mass(relevance, mask, fov),
        "rank": relevance_rank_accuracy(relevance, mask, fov),
        "pointing": pointing_game(relevance, mask, fov, tolerance),
        "auc": detection_auc(relevance, mask, fov),
        "share": float(m.sum() / max(int(fov.sum()), 1)),
    }


def localisation_per_type(
    relevance, masks: dict[str, np.ndarray], fov=None, tolerance: int = 0
) -> dict[str, dict[str, float]]:
    """`localisation` for each non-empty mask and for their union (``"any"``)."""
    out = {}
    union = None
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        if fov is not None:
            mask = mask & np.asarray(fov, bool)
        if not mask.any():
            continue
        union = mask.copy() if union is None else union | mask
        out[name] = localisation(relevance, mask, fov, tolerance)
    if union is not None:
        out["any"] = localisation(relevance, union, fov, tolerance)
    return out
