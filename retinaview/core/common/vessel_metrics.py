"""Vessel segmentation figures inside the field of view: F1 (Dice), mIoU, AUC, accuracy.

Only pixels inside the field of view count: outside it there is nothing to segment, and a network's noise at
the rim of the fundus would otherwise dominate (Maninis et al. 2016 evaluate on the FOV mask of DRIVE).
mIoU is the mean of the vessel IoU and the background IoU, both taken inside the mask. numpy only (the GUI
shows a live mIoU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class VesselScores:
    """Figures of one image or a pooled set, all inside the field of view.

    ``f1``: Dice of vessel pixels; ``miou``: mean of vessel and background IoU; ``auc``: area under the ROC
    of the probability as a pixel detector of vessels (NaN when a class is absent); ``accuracy``; ``pixels``:
    number of pixels counted; ``vessel_fraction``: share of true vessel pixels.
    """

    f1: float
    miou: float
    iou_vessel: float
    iou_background: float
    auc: float
    accuracy: float
    sensitivity: float
    specificity: float
    pixels: int
    vessel_fraction: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(np.count_nonzero(~pred & ~truth))
    return tp, fp, fn, tn


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the rank statistic (ties get their average rank); NaN for one class."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # average ranks over runs of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def vessel_scores(
    prob: np.ndarray,
    truth: np.ndarray,
    fov: np.ndarray | None = None,
    threshold: float = 0.5,
) -> VesselScores:
    """Figures of a vessel probability map against a vessel mask, inside ``fov`` (all pixels when None).

    Parameters
    ----------
    prob : (H, W) float
        Vessel probability in [0, 1].
    truth : (H, W) bool
        True vessel pixels.
    fov : (H, W) bool, optional
        Field of view; pixels outside it are ignored.
    threshold : float
        Probability above which a pixel is called vessel (for F1, IoU, accuracy).
    """
    prob = np.asarray(prob, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    if prob.shape != truth.shape:
        raise ValueError(
            f"probability map {prob.shape} and vessel mask {truth.shape} differ in size"
        )
    mask = np.ones(prob.shape, dtype=bool) if fov is None else np.asarray(fov, dtype=bool)
    if mask.shape != prob.shape:
        raise ValueError(
            f"field of view {mask.shape} and probability map {prob.shape} differ in size"
        )
    p = prob[mask]
    t = truth[mask]
    pred = p > threshold
    tp, fp, fn, tn = _counts(pred, t)
    iou_v = _ratio(tp, tp + fp + fn)
    iou_b = _ratio(tn, tn + fn + fp)
    return VesselScores(
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        miou=float(np.nanmean([iou_v, iou_b]))
        if not (np.isnan(iou_v) and np.isnan(iou_b))
        else 0.0,
        iou_vessel=iou_v,
        iou_background=iou_b,
        auc=roc_auc(p, t),
        accuracy=_ratio(tp + tn, t.size),
        sensitivity=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp),
        pixels=int(t.size),
        vessel_fraction=_ratio(float(t.sum()), t.size),
    )


def mean_scores(rows: list[VesselScores]) -> dict[str, float]:
    """Per-image mean of every figure (NaNs skipped), as the literature reports mIoU over a test set."""
    if not rows:
        return {}
    keys = rows[0].as_dict().keys()
    out: dict[str, float] = {}
    for k in keys:
        vals = np.array([r.as_dict()[k] for r in rows], dtype=np.float64)
        out[k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    out["images"] = float(len(rows))
    return out
