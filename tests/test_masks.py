"""n-sigma masks: sigma over the field of view, three modes."""

from __future__ import annotations

import numpy as np
import pytest

from retinaview.core.common.masks import fov_sigma, nsigma_mask


def test_sigma_over_fov_not_background():
    rng = np.random.default_rng(0)
    score = np.zeros((100, 100))
    fov = np.zeros((100, 100), bool)
    fov[20:80, 20:80] = True
    score[fov] = rng.normal(0, 2.0, fov.sum())
    assert fov_sigma(score, fov) == pytest.approx(np.std(score[fov]))
    assert fov_sigma(score, fov) > fov_sigma(score)  # the zero background would shrink it


def test_modes():
    score = np.array([[-3.0, -1.0, 0.0, 1.0, 3.0]])
    fov = np.ones_like(score, bool)
    sigma = np.std(score)
    assert nsigma_mask(score, 1.0, "positive", fov).tolist() == [[False, False, False, False, True]]
    assert nsigma_mask(score, 1.0, "negative", fov).tolist() == [[True, False, False, False, False]]
    assert nsigma_mask(score, 1.0, "absolute", fov).tolist() == [[True, False, False, False, True]]
    assert nsigma_mask(score, 0.0, "positive", fov).sum() == 2
    assert nsigma_mask(score, 3.0 / sigma + 0.01, "absolute", fov).sum() == 0
    with pytest.raises(ValueError, match="mode"):
        nsigma_mask(score, 1.0, "both", fov)


def test_outside_fov_never_kept():
    score = np.full((4, 4), 5.0)
    score[0, 0] = 100.0
    fov = np.ones((4, 4), bool)
    fov[0, 0] = False
    assert not nsigma_mask(score, 0.0, "absolute", fov)[0, 0]
