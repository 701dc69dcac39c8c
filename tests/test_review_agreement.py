"""Agreement figures: kappa against the training metrics' independent code and hand counts, Wilson
intervals against published values, bootstrap intervals that cover the estimate and shrink with n."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retinaview.core.common.agreement import (
    agreement,
    bootstrap_kappa_interval,
    confusion_matrix,
    quadratic_weighted_kappa,
    wilson_interval,
)
from retinaview.train import metrics


def test_kappa_matches_the_training_metrics_and_a_hand_count():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 200)
    p = np.clip(t + rng.integers(-1, 2, 200), 0, 4)
    assert quadratic_weighted_kappa(t, p) == pytest.approx(metrics.quadratic_weighted_kappa(t, p))
    # Two images, grades (0, 4) against (4, 0): observed weighted disagreement 2, expected 1 -> -1.
    assert quadratic_weighted_kappa([0, 4], [4, 0]) == pytest.approx(-1.0)
    assert quadratic_weighted_kappa(t, t) == pytest.approx(1.0)
    assert math.isnan(quadratic_weighted_kappa([], []))
    with pytest.raises(ValueError):
        confusion_matrix([0, 5], [0, 1])


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605; 0/20 -> 0-0.1611.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611), abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_bootstrap_interval_covers_the_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(2)

    def width(n):
        t = rng.integers(0, 5, n)
        p = np.where(rng.random(n) < 0.7, t, rng.integers(0, 5, n))
        lo, hi = bootstrap_kappa_interval(t, p, n_boot=400, seed=3)
        assert lo <= quadratic_weighted_kappa(t, p) <= hi
        return hi - lo

    assert width(400) < 0.6 * width(50)
    assert bootstrap_kappa_interval([1, 2, 3], [1, 2, 3], n_boot=50) == (1.0, 1.0)


def test_referable_sensitivity_and_specificity_by_hand():
    truth = [0, 1, 2, 3, 4, 2]
    graded = [0, 2, 2, 1, 4, 3]
    a = agreement(truth, graded, n_boot=0)
    # referable truth: images 2, 3, 4, 5; graded referable: 1, 2, 4, 5.
    assert (a.sensitivity.successes, a.sensitivity.n) == (3, 4)
    assert (a.specificity.successes, a.specificity.n) == (1, 2)
    assert (a.accuracy.successes, a.accuracy.n) == (3, 6)
    assert a.confusion.sum() == 6 and a.confusion[3, 1] == 1
    # An ungradable image counted as referable by the caller's flags.
    b = agreement([0], [0], compared_referable=[True], n_boot=0)
    assert b.specificity.value == 0.0
