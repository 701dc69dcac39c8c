"""Agreement between graders: confusion, quadratic weighted kappa, referable sensitivity and specificity,
with 95 % intervals (Wilson score for proportions, percentile bootstrap for kappa).

numpy only, so the desktop app's agreement panel and the reader-study summary share it. Grades are ICDR
0-4; referable diabetic retinopathy is grade >= 2 (or an ungradable image, which the callers decide).
The training metrics in ``retinaview.train.metrics`` compute the same kappa, but ``train`` may not be
imported from the torch-free layer, so the few lines live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NUM_GRADES = 5
REFERABLE_GRADE = 2
Z95 = 1.959963984540054  # standard normal quantile for a two-sided 95 % interval


def confusion_matrix(y_true, y_pred, num_classes: int = NUM_GRADES) -> np.ndarray:
    """(K, K) int64 counts; rows are the reference grades, columns the compared grades."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} entries, y_pred {p.size}")
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= num_classes or p.max() >= num_classes):
        raise ValueError(f"grades must lie in 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def kappa_from_confusion(confusion: np.ndarray) -> float:
    """Quadratic weighted kappa (Cohen 1968) of a confusion matrix.

    kappa = 1 - sum(W O) / sum(W E), W_ij = (i - j)^2 / (K - 1)^2, E the outer product of the marginals / N.
    With no expected disagreement (one grade on both sides) kappa is 1 for full agreement, else 0; with no
    pairs it is NaN.
    """
    o = np.asarray(confusion, dtype=np.float64)
    k = o.shape[0]
    n = o.sum()
    if n == 0:
        return float("nan")
    idx = np.arange(k)
    w = (idx[:, None] - idx[None, :]) ** 2 / max(k - 1, 1) ** 2
    e = np.outer(o.sum(1), o.sum(0)) / n
    den = float((w * e).sum())
    num = float((w * o).sum())
    if den == 0:
        return 1.0 if num == 0 else 0.0
    return 1.0 - num / den


def quadratic_weighted_kappa(y_true, y_pred, num_classes: int = NUM_GRADES) -> float:
    """Quadratic weighted kappa of two grade lists (see `kappa_from_confusion`)."""
    return kappa_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) of a proportion successes / n; (nan, nan) when n is 0."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_kappa_interval(
    y_true,
    y_pred,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    num_classes: int = NUM_GRADES,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the quadratic weighted kappa, resampling pairs with replacement.

    Resamples whose kappa is undefined are dropped; (nan, nan) for fewer than two pairs.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    n = t.size
    if n < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    # One bincount for all resamples: offset each resample's cells by its row.
    cells = t[idx] * num_classes + p[idx] + np.arange(n_boot)[:, None] * num_classes * num_classes
    conf = np.bincount(cells.ravel(), minlength=n_boot * num_classes * num_classes)
    conf = conf.reshape(n_boot, num_classes, num_classes)
    kappas = np.array([kappa_from_confusion(c) for c in conf])
    kappas = kappas[np.isfinite(kappas)]
    if kappas.size == 0:
        return (float("nan"), float("nan"))
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(kappas, [a, 1.0 - a])
    return (float(lo), float(hi))


@dataclass(frozen=True)
class Proportion:
    """successes / n with its 95 % Wilson interval."""

    successes: int
    n: int

    @property
    def value(self) -> float:
        return self.successes / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.n)


@dataclass(frozen=True)
class Agreement:
    """How one set of grades agrees with a reference set on the same images."""

    n: int
    confusion: np.ndarray  # (5, 5), rows reference, columns compared
    accuracy: Proportion
    kappa: float
    kappa_interval: tuple[float, float]
    sensitivity: Proportion  # referable by the compared grades among referable by the reference
    specificity: Proportion  # not referable by the compared among not referable by the reference

    def as_dict(self) -> dict:
        """Plain numbers for JSON and CSV (NaN where undefined)."""
        return {
            "n": self.n,
            "accuracy": self.accuracy.value,
            "accuracy_ci": list(self.accuracy.interval),
            "qwk": self.kappa,
            "qwk_ci": list(self.kappa_interval),
            "sensitivity": self.sensitivity.value,
            "sensitivity_ci": list(self.sensitivity.interval),
            "specificity": self.specificity.value,
            "specificity_ci": list(self.specificity.interval),
            "confusion": self.confusion.tolist(),
        }


def agreement(
    reference,
    compared,
    reference_referable=None,
    compared_referable=None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Agreement:
    """Compare grades 0-4 with reference grades 0-4 on the same images.

    Referable flags default to grade >= 2; pass them to count ungradable images as referable. ``n_boot`` 0
    skips the bootstrap (interval NaN), for live panels that only need the point values.
    """
    t = np.asarray(reference, dtype=np.int64).ravel()
    p = np.asarray(compared, dtype=np.int64).ravel()
    conf = confusion_matrix(t, p)
    rt = (
        t >= REFERABLE_GRADE
        if reference_referable is None
        else np.asarray(reference_referable, bool)
    )
    rp = (
        p >= REFERABLE_GRADE if compared_referable is None else np.asarray(compared_referable, bool)
    )
    if rt.shape != t.shape or rp.shape != t.shape:
        raise ValueError("referable flags must have one entry per image")
    interval = (
        bootstrap_kappa_interval(t, p, n_boot=n_boot, seed=seed)
        if n_boot > 0
        else (float("nan"), float("nan"))
    )
    return Agreement(
        n=int(t.size),
        confusion=conf,
        accuracy=Proportion(int(np.trace(conf)), int(t.size)),
        kappa=kappa_from_confusion(conf),
        kappa_interval=interval,
        sensitivity=Proportion(int((rt & rp).sum()), int(rt.sum())),
        specificity=Proportion(int((~rt & ~rp).sum()), int((~rt).sum())),
    )
