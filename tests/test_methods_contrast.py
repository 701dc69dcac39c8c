"""Contrastive maps (exact for RF scores) and IG counterfactuals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.contrast import contrast
from retinaview.core.explain.counterfactual import ig_counterfactuals
from retinaview.core.explain.ig import integrated_gradients, make_baseline
from retinaview.core.explain.methods import explain_rfscore
from tests.helpers_methods import tiny_input, tiny_model

torch.set_num_threads(1)


def test_rfscore_contrast_sums_to_the_logit_difference():
    model, x = tiny_model(), tiny_input()
    res = contrast(model, x)
    k = int(np.argmax(res.logits))
    assert (res.k, res.j) == (k, k - 1 if k > 0 else 1)
    assert abs(res.map.sum() - (res.logits[res.k] - res.logits[res.j])) < 1e-10
    assert res.residual < 1e-10
    ex = explain_rfscore(model, x)
    np.testing.assert_allclose(res.map, ex.total[res.k] - ex.total[res.j], rtol=0, atol=1e-12)
    other = contrast(model, x, k=4, j=2)
    assert abs(other.map.sum() - (other.logits[4] - other.logits[2])) < 1e-10


def test_ig_contrast_is_the_difference_of_the_two_ig_maps():
    model, x = tiny_model(smooth=True), tiny_input()
    res = contrast(model, x, k=3, j=1, base="ig", steps=16)
    ig = integrated_gradients(model, x, make_baseline(model, x, "halfgray"), [3, 1], steps=16)
    maps = ig.maps()
    np.testing.assert_allclose(res.map, maps[0] - maps[1], rtol=0, atol=1e-12)
    assert res.residual < 1e-8


def test_contrast_bad_input_names_the_choices():
    model, x = tiny_model(), tiny_input()
    with pytest.raises(RetinaviewError, match=r"'cam' is not offered \(choices: rfscore, ig\)"):
        contrast(model, x, base="cam")
    with pytest.raises(RetinaviewError, match="k=9 out of range"):
        contrast(model, x, k=9)
    with pytest.raises(RetinaviewError, match="both 2"):
        contrast(model, x, k=2, j=2)


@pytest.mark.parametrize("target", [0, 2, 4])
def test_counterfactuals_stay_in_range_and_raise_the_target(target):
    model, x = tiny_model(smooth=True), tiny_input()
    res = ig_counterfactuals(model, x, target=target, factors=[0.0, 0.05, 0.1, 0.2])
    assert res.images.shape == (4, 24, 24, 3)
    assert res.images.min() >= 0 and res.images.max() <= 1
    # c = 0 is the image itself, clipped to the valid range.
    p = res.images[0] - res.difference[0]
    np.testing.assert_allclose(res.images[0], np.clip(p, 0, 1), atol=1e-6)
    np.testing.assert_allclose(res.probs.sum(1), 1, atol=1e-12)
    t = res.probs[:, target]
    assert all(b > a for a, b in zip(t, t[1:], strict=False)), t


def test_counterfactual_factors_must_be_non_negative():
    model, x = tiny_model(), tiny_input()
    with pytest.raises(RetinaviewError, match="factors"):
        ig_counterfactuals(model, x, factors=[-1.0])
