"""ROAD's noisy linear imputation from its definition: hand-computed neighbourhoods, linear images, noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.metrics.road import impute, road_curves
from tests.helpers_methods import tiny_model


def test_one_pixel_is_the_weighted_mean_of_its_neighbours():
    img = np.random.default_rng(0).random((5, 5))
    removed = np.zeros((5, 5), bool)
    removed[2, 2] = True
    out = impute(img, removed, noise=0.0)
    edges = img[1, 2] + img[3, 2] + img[2, 1] + img[2, 3]
    diagonals = img[1, 1] + img[1, 3] + img[3, 1] + img[3, 3]
    assert out[2, 2] == pytest.approx(edges / 6 + diagonals / 12)
    np.testing.assert_array_equal(out[~removed], img[~removed])


def test_corner_pixel_renormalises_the_weights_of_existing_neighbours():
    img = np.random.default_rng(1).random((4, 4, 3))
    removed = np.zeros((4, 4), bool)
    removed[0, 0] = True
    out = impute(img, removed, noise=0.0)
    expected = (img[0, 1] / 6 + img[1, 0] / 6 + img[1, 1] / 12) / (1 / 6 + 1 / 6 + 1 / 12)
    np.testing.assert_allclose(out[0, 0], expected)


def test_two_touching_pixels_solve_together():
    """Two removed neighbours: each is the weighted mean including the other's imputed value."""
    img = np.random.default_rng(2).random((5, 6))
    removed = np.zeros((5, 6), bool)
    removed[2, 2] = removed[2, 3] = True
    out = impute(img, removed, noise=0.0)
    for y, x in ((2, 2), (2, 3)):
        mean = 0.0
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    mean += out[y + dy, x + dx] * (1 / 6 if dy == 0 or dx == 0 else 1 / 12)
        assert out[y, x] == pytest.approx(mean)


def test_linear_image_is_reproduced_exactly():
    yy, xx = np.mgrid[:20, :20]
    img = 0.01 * yy - 0.02 * xx + 0.3
    removed = np.zeros((20, 20), bool)
    removed[3:15, 4:12] = True
    removed[16, 2] = True
    np.testing.assert_allclose(impute(img, removed, noise=0.0), img, atol=1e-12)


def test_noise_has_the_stated_spread():
    img = np.full((60, 60), 0.5)
    removed = np.zeros((60, 60), bool)
    removed[5:55, 5:55] = True
    out = impute(img, removed, noise=0.01, rng=np.random.default_rng(3))
    dev = out[removed] - 0.5
    assert abs(dev.std() - 0.01) < 0.0005 and abs(dev.mean()) < 0.0005
    np.testing.assert_array_equal(out[~removed], 0.5)


def test_nothing_to_impute_from():
    with pytest.raises(RetinaviewError, match="nothing to impute"):
        impute(np.zeros((3, 3)), np.ones((3, 3), bool))


def test_road_curves_start_at_the_image_and_order_by_relevance():
    torch.set_num_threads(1)
    model = tiny_model(size=16)
    image = np.random.default_rng(5).random((16, 16, 3))
    relevance = np.random.default_rng(6).normal(size=(16, 16))
    fov = np.ones((16, 16), bool)
    morf, lerf = road_curves(model, image, relevance, fov, 1, fractions=(0.25, 0.5), noise=0.0)
    from retinaview.core.models.inputs import to_input

    with torch.no_grad():
        p0 = torch.softmax(model(to_input(model, image)), -1)[0, 1].item()
        rank = np.argsort(np.argsort(-relevance.ravel())).reshape(16, 16)
        removed = rank < 64  # a quarter, most relevant first
        p_morf = torch.softmax(model(to_input(model, impute(image, removed, 0.0))), -1)[0, 1].item()
        removed = rank >= 256 - 64  # a quarter, least relevant first
        p_lerf = torch.softmax(model(to_input(model, impute(image, removed, 0.0))), -1)[0, 1].item()
    assert morf.order == "morf" and lerf.order == "lerf"
    np.testing.assert_allclose(morf.fractions, [0, 0.25, 0.5])
    assert morf.probs[0] == pytest.approx(p0) and lerf.probs[0] == pytest.approx(p0)
    assert morf.probs[1] == pytest.approx(p_morf) and lerf.probs[1] == pytest.approx(p_lerf)
    assert morf.score == pytest.approx(morf.probs[1:].mean())


def test_lu_fallback_gives_the_same_imputation(monkeypatch):
    import retinaview.core.metrics.road as road

    img = np.random.default_rng(7).random((30, 30, 3))
    removed = np.zeros((30, 30), bool)
    removed[5:25, 5:25] = True
    by_cg = impute(img, removed, noise=0.0)
    monkeypatch.setattr(road, "CG_MAX_ITER", 1)
    by_lu = impute(img, removed, noise=0.0)
    np.testing.assert_allclose(by_cg, by_lu, atol=1e-8)
