"""Grade -> lesion plan, following the clinical grading table (after ETDRS, as tabulated for DR graders in the DenseNet/CAM grading literature).

=====  ==============  =========================================================================
Grade  Level           Lesions drawn
=====  ==============  =========================================================================
0      No DR           none
1      Mild            microaneurysms only (3-12 small dark-red dots)
2      Moderate        more microaneurysms, dot/blot haemorrhages in 1-3 quadrants, hard exudates
                       (often circinate near the macula), a few cotton-wool spots
3      Severe          haemorrhages in all 4 quadrants (many) and/or venous beading, plus grade-2 lesions
4      Proliferative   new vessels (at the disc or elsewhere), sometimes a pre-retinal haemorrhage,
                       usually with grade-3 (else grade-2) lesions
=====  ==============  =========================================================================

Quadrants are the four quarters of the field of view around its centre (superior/inferior x left/right).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_CLASS_FREQUENCIES = (0.73, 0.07, 0.15, 0.025, 0.025)
GRADE_NAMES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")


def check_frequencies(frequencies: Sequence[float]) -> np.ndarray:
    """Validate and normalise five class frequencies; raises ValueError."""
    f = np.asarray(list(frequencies), dtype=np.float64)
    if f.shape != (5,) or not np.all(np.isfinite(f)) or np.any(f < 0) or f.sum() <= 0:
        raise ValueError("class frequencies must be five non-negative numbers with a positive sum")
    return f / f.sum()


def draw_grade(
    rng: np.random.Generator, frequencies: Sequence[float] = DEFAULT_CLASS_FREQUENCIES
) -> int:
    """Draw one grade 0..4 with the given class frequencies."""
    f = check_frequencies(frequencies)
    return int(np.searchsorted(np.cumsum(f), rng.random() * 1.0, side="right").clip(0, 4))


# How alike the two eyes of one patient are: weight of a grade difference of 0, 1, 2, 3, 4.
FELLOW_EYE_KERNEL = (1.0, 0.12, 0.015, 0.003, 0.001)


def patient_joint(
    frequencies: Sequence[float] = DEFAULT_CLASS_FREQUENCIES, kernel=FELLOW_EYE_KERNEL
):
    """Symmetric 5x5 joint distribution of (left, right) grades whose marginals are ``frequencies``.

    J = diag(u) K diag(u) with K[a, b] = kernel[|a - b|], fitted by symmetric Sinkhorn iterations, so both
    eyes follow the class frequencies and the fellow eye is usually the same grade or one step away.
    """
    f = check_frequencies(frequencies)
    idx = np.arange(5)
    K = np.asarray(kernel, np.float64)[np.abs(idx[:, None] - idx[None, :])]
    u = np.sqrt(f) + 1e-12
    for _ in range(500):
        u = np.sqrt(u * f / np.maximum(K @ u, 1e-300))
    J = u[:, None] * K * u[None, :]
    return J / J.sum()


def draw_patient_grades(
    rng: np.random.Generator, frequencies=DEFAULT_CLASS_FREQUENCIES
) -> tuple[int, int]:
    """Draw correlated (left, right) grades for one patient."""
    J = patient_joint(frequencies).ravel()
    k = int(np.searchsorted(np.cumsum(J), rng.random() * J.sum(), side="right").clip(0, 24))
    return k // 5, k % 5


@dataclass
class LesionPlan:
    """How many of each lesion to draw."""

    microaneurysms: int = 0
    haemorrhage_quadrants: tuple[int, ...] = ()  # quadrant ids 0..3
    haemorrhages_per_quadrant: tuple[int, ...] = ()
    exudate_clusters: int = 0
    cotton_wool_spots: int = 0
    venous_beading: int = 0  # number of beaded vein segments
    new_vessels: int = 0  # number of tufts
    nv_at_disc: bool = False
    preretinal: bool = False


def plan_lesions(rng: np.random.Generator, grade: int) -> LesionPlan:
    """Choose lesion counts for a grade (the rules in the module docstring)."""
    p = LesionPlan()
    if grade <= 0:
        return p
    if grade == 1:
        p.microaneurysms = int(rng.integers(4, 13))
        return p
    severe = grade == 3 or (grade == 4 and rng.random() < 0.7)
    p.microaneurysms = int(rng.integers(8, 22))
    if severe:
        quads = (0, 1, 2, 3)
        per = tuple(int(v) for v in rng.integers(4, 9, size=4))
        p.venous_beading = int(rng.random() < 0.5) + int(rng.random() < 0.2)
    else:
        k = int(rng.integers(1, 4))
        quads = tuple(int(q) for q in sorted(rng.choice(4, size=k, replace=False)))
        per = tuple(int(v) for v in rng.integers(1, 4, size=k))
    p.haemorrhage_quadrants = quads
    p.haemorrhages_per_quadrant = per
    p.exudate_clusters = int(rng.choice([0, 1, 1, 2, 2, 3]))
    p.cotton_wool_spots = int(rng.choice([0, 0, 1, 2, 3, 4])) + (2 if severe else 0)
    if grade == 4:
        p.new_vessels = 1 + int(rng.random() < 0.25)
        p.nv_at_disc = bool(rng.random() < 0.55)
        p.preretinal = bool(rng.random() < 0.35)
    return p


def quadrant_of(x, y, cx: float, cy: float):
    """Quadrant id around (cx, cy): 0 upper-left, 1 upper-right, 2 lower-left, 3 lower-right."""
    return (np.asarray(y) > cy).astype(int) * 2 + (np.asarray(x) > cx).astype(int)


def quadrants_with(mask: np.ndarray, cx: float, cy: float) -> set[int]:
    """The quadrants (around (cx, cy)) holding any pixel of ``mask``."""
    ys, xs = np.nonzero(mask)
    return {int(q) for q in np.unique(quadrant_of(xs, ys, cx, cy))}
