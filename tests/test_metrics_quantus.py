"""Oracle: the same figures from Quantus (Hedström et al. 2023) on the same maps, with matched settings.

Quantus is a test-only dependency: these tests skip when it is not installed.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from retinaview.core.metrics.faithfulness import perturbation_curves
from retinaview.core.metrics.localisation import (
    detection_auc,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)
from tests.helpers_methods import tiny_model

quantus = pytest.importorskip("quantus")

SIZE = 16
PF_SIZE = 12


def cases(n: int = 3, seed: int = 0, size: int = SIZE):
    """Random maps (no ties) and blob masks on size x size images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(3, size - 3, 2)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(4, 12)
        relevance = rng.normal(size=(size, size)) + 2.0 * mask
        out.append((relevance, mask))
    return out


def quantus_scores(metric, relevance, mask):
    x = np.zeros((len(relevance), 3, SIZE, SIZE), np.float32)
    a = np.stack(relevance)[:, None].astype(np.float64)
    s = np.stack(mask)[:, None].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(
            metric(model=None, x_batch=x, y_batch=np.zeros(len(x), int), a_batch=a, s_batch=s),
            dtype=np.float64,
        )


def test_localisation_agrees_with_quantus():
    data = cases()
    rel = [r for r, _ in data]
    masks = [m for _, m in data]
    pos = [np.clip(r, 0, None) for r in rel]
    kw = {"normalise": False, "disable_warnings": True}
    mass_q = quantus_scores(quantus.RelevanceMassAccuracy(abs=True, **kw), rel, masks)
    mass_pos_q = quantus_scores(quantus.RelevanceMassAccuracy(**kw), pos, masks)
    rank_q = quantus_scores(quantus.RelevanceRankAccuracy(**kw), rel, masks)
    point_q = quantus_scores(quantus.PointingGame(**kw), rel, masks)
    auc_q = quantus_scores(quantus.AUC(**kw), rel, masks)
    for i, (r, m) in enumerate(data):
        assert relevance_mass(r, m, use="abs") == pytest.approx(mass_q[i], rel=1e-12)
        assert relevance_mass(r, m) == pytest.approx(mass_pos_q[i], rel=1e-12)
        assert relevance_rank_accuracy(r, m) == pytest.approx(rank_q[i], rel=1e-12)
        assert pointing_game(r, m) == point_q[i]
        assert detection_auc(r, m) == pytest.approx(auc_q[i], rel=1e-12)


def test_deletion_curve_agrees_with_quantus_pixel_flipping():
    """Pixel flipping with a constant baseline of 0 after normalisation is our half-gray deletion when the
    model's mean is 0.5 in every channel; whole image as field of view, 36 steps of 4 pixels (Quantus steps
    over the 3 x 144 channel values of a 12 x 12 image, 12 at a time)."""
    torch.set_num_threads(1)
    model = tiny_model(size=PF_SIZE).float()
    model.spec = dataclasses.replace(model.spec, mean=(0.5, 0.5, 0.5))
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, PF_SIZE, PF_SIZE, generator=g)
    rel = [r for r, _ in cases(2, seed=5, size=PF_SIZE)]
    with torch.no_grad():
        targets = model(x).argmax(1).numpy()
    metric = quantus.PixelFlipping(
        features_in_step=12,
        perturb_baseline=0.0,
        normalise=False,
        disable_warnings=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves_q = metric(
            model=model,
            x_batch=x.numpy(),
            y_batch=targets,
            a_batch=np.stack(rel)[:, None].astype(np.float32),
            softmax=True,
            device="cpu",
        )
    fov = np.ones((PF_SIZE, PF_SIZE), bool)
    for i in range(2):
        (ours,) = perturbation_curves(
            model, x[i : i + 1], rel[i], fov, int(targets[i]), modes=("deletion",), steps=36
        )
        np.testing.assert_allclose(ours.probs[1:], curves_q[i], atol=1e-5)
