"""Grading metrics: quadratic weighted kappa, accuracy, confusion, per-class and referable-DR figures.

numpy only (no sklearn). Grades are integers 0..K-1; ``probs`` are (N, K) class probabilities.
Referable DR means grade >= 2; its score is the summed probability of grades 2..K-1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

REFERABLE_GRADE = 2


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int = 5) -> np.ndarray:
    """Counts of (true grade, predicted grade).

    Parameters
    ----------
    y_true, y_pred : array_like
        (N,) integer grades 0..K-1.
    num_classes : int
        K.

    Returns
    -------
    numpy.ndarray
        (K, K) int64; rows are true grades, columns predicted grades.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} entries, y_pred {p.size}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def kappa_from_confusion(confusion: np.ndarray) -> float:
    """Quadratic weighted kappa of a confusion matrix.

    kappa = 1 - sum(W * O) / sum(W * E) with W_ij = (i - j)^2 / (K - 1)^2 and E the outer product of the
    row and column totals divided by N. When the expected disagreement is zero (one grade only on both
    sides) kappa is 1 for complete agreement and 0 otherwise.

    Parameters
    ----------
    confusion : numpy.ndarray
        (K, K) counts, rows true grades.

    Returns
    -------
    float
        Kappa in [-1, 1]; 0 for an empty matrix.
    """
    o = np.asarray(confusion, dtype=np.float64)
    k = o.shape[0]
    n = o.sum()
    if n == 0:
        return 0.0
    idx = np.arange(k)
    w = (idx[:, None] - idx[None, :]) ** 2 / max(k - 1, 1) ** 2
    e = np.outer(o.sum(1), o.sum(0)) / n
    den = (w * e).sum()
    num = (w * o).sum()
    if den == 0:
        return 1.0 if num == 0 else 0.0
    return float(1.0 - num / den)


def quadratic_weighted_kappa(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int = 5) -> float:
    """Quadratic weighted kappa of true and predicted grades (see `kappa_from_confusion`).

    Parameters
    ----------
    y_true, y_pred : array_like
        (N,) integer grades 0..K-1.
    num_classes : int
        K.

    Returns
    -------
    float
    """
    return kappa_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


def accuracy_from_confusion(confusion: np.ndarray) -> float:
    """Share of images on the diagonal of a (K, K) confusion matrix; 0 when it is empty."""
    n = confusion.sum()
    return float(np.trace(confusion) / n) if n else 0.0


def per_class(confusion: np.ndarray) -> list[dict[str, Any]]:
    """One-against-the-rest figures of every grade.

    Parameters
    ----------
    confusion : numpy.ndarray
        (K, K) counts, rows true grades.

    Returns
    -------
    list of dict
        Per grade: ``grade``, ``support`` (true images), ``sensitivity`` (recall: the share of the grade's
        images graded right) and ``specificity``; a figure without images to count is None.
    """
    c = np.asarray(confusion, dtype=np.int64)
    n = c.sum()
    out = []
    for k in range(c.shape[0]):
        tp = int(c[k, k])
        fn = int(c[k].sum() - tp)
        fp = int(c[:, k].sum() - tp)
        tn = int(n - tp - fn - fp)
        out.append(
            {
                "grade": k,
                "support": tp + fn,
                "sensitivity": _ratio(tp, tp + fn),
                "specificity": _ratio(tn, tn + fp),
            }
        )
    return out


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float | None:
    """Area under the ROC curve by ranking (Mann-Whitney U, ties count one half).

    Parameters
    ----------
    labels : array_like
        (N,) booleans, True for positives.
    scores : array_like
        (N,) scores, higher meaning more likely positive.

    Returns
    -------
    float or None
        The AUC; None without both positives and negatives.
    """
    y = np.asarray(labels, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # Average ranks over ties: each run of equal scores gets the mean of its 1-based positions.
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def sensitivity_at_specificity(
    labels: ArrayLike, scores: ArrayLike, specificity: float = 0.9
) -> float | None:
    """Highest sensitivity over the thresholds whose specificity is at least ``specificity``.

    Parameters
    ----------
    labels : array_like
        (N,) booleans, True for positives.
    scores : array_like
        (N,) scores; a threshold t calls a score > t positive.
    specificity : float
        The least specificity, in [0, 1].

    Returns
    -------
    float or None
        None without both positives and negatives.
    """
    y = np.asarray(labels, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.all() or not y.any():
        return None
    neg = np.sort(s[~y])
    # Threshold t predicts positive for score > t; specificity = fraction of negatives <= t.
    k = int(np.ceil(specificity * neg.size)) - 1
    t = neg[max(k, 0)]
    return float((s[y] > t).mean())


def referable(y_true: ArrayLike, probs: ArrayLike) -> dict[str, Any]:
    """Referable DR (grade >= 2) figures.

    Parameters
    ----------
    y_true : array_like
        (N,) true grades.
    probs : array_like
        (N, K) class probabilities.

    Returns
    -------
    dict
        ``sensitivity`` and ``specificity`` of the most probable grade, ``auc`` and
        ``sensitivity_at_90_specificity`` of the summed probability of grades 2..K-1, ``positives``,
        ``negatives``.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel() >= REFERABLE_GRADE
    p = np.asarray(probs, dtype=np.float64)
    score = p[:, REFERABLE_GRADE:].sum(1)
    pred = p.argmax(1) >= REFERABLE_GRADE
    tp = int((pred & t).sum())
    tn = int((~pred & ~t).sum())
    return {
        "sensitivity": _ratio(tp, int(t.sum())),
        "specificity": _ratio(tn, int((~t).sum())),
        "auc": roc_auc(t, score),
        "sensitivity_at_90_specificity": sensitivity_at_specificity(t, score, 0.9),
        "positives": int(t.sum()),
        "negatives": int((~t).sum()),
    }


def grading_report(
    y_true: ArrayLike, probs: ArrayLike, num_classes: int | None = None
) -> dict[str, Any]:
    """Everything `retinaview evaluate` prints.

    Parameters
    ----------
    y_true : array_like
        (N,) true grades.
    probs : array_like
        (N, K) class probabilities; the predicted grade is the most probable.
    num_classes : int, optional
        K; default ``probs.shape[1]``.

    Returns
    -------
    dict
        ``n``, ``qwk``, ``accuracy``, ``balanced_accuracy`` (the mean recall over the grades present, so a
        common grade cannot carry it), ``confusion``, ``per_class`` (`per_class`) and ``referable``
        (`referable`).
    """
    p = np.asarray(probs, dtype=np.float64)
    k = num_classes or p.shape[1]
    t = np.asarray(y_true, dtype=np.int64).ravel()
    cm = confusion_matrix(t, p.argmax(1), k)
    classes = per_class(cm)
    return {
        "n": int(t.size),
        "qwk": kappa_from_confusion(cm),
        "accuracy": accuracy_from_confusion(cm),
        "balanced_accuracy": balanced_accuracy(classes),
        "confusion": cm.tolist(),
        "per_class": classes,
        "referable": referable(t, p),
    }


def balanced_accuracy(classes: list[dict[str, Any]]) -> float | None:
    """Mean recall (sensitivity) over the grades with at least one true image; None if there are none.

    Parameters
    ----------
    classes : list of dict
        `per_class` rows.

    Returns
    -------
    float or None
    """
    recalls = [c["sensitivity"] for c in classes if c["support"]]
    return float(np.mean(recalls)) if recalls else None


def _ratio(a: int, b: int) -> float | None:
    return float(a / b) if b else None
