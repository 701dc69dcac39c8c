"""Cascading parameter randomisation and the bootstrap summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.metrics.randomisation import cascade_layers, parameter_randomisation
from retinaview.core.metrics.summary import bootstrap_interval, summarise
from tests.helpers_methods import tiny_model


def image(size: int = 24) -> np.ndarray:
    return (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)


def test_cascade_from_the_top_leaves_the_model_alone():
    torch.set_num_threads(1)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert cascade_layers(model) == ["head", "b2", "b1"]
    steps = parameter_randomisation(model, image(), "gradxinput", seed=3)
    assert [s.layer for s in steps] == ["head", "b2", "b1"]
    for s in steps:
        assert -1.0 <= s.spearman <= 1.0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_randomising_the_first_block_changes_cam():
    """CAM is built on the last block's activations, which follow the first block's weights: a fresh first
    block must lower the rank correlation (the figure can fail)."""
    torch.set_num_threads(1)
    steps = parameter_randomisation(tiny_model(), image(), "cam", layers=["b1"], seed=1)
    assert steps[0].layer == "b1" and steps[0].spearman < 0.99


def test_unknown_layer_is_one_line():
    with pytest.raises(RetinaviewError, match="no layer 'nope'"):
        parameter_randomisation(tiny_model(), image(), "saliency", layers=["nope"])


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(1.0, 1.0, 20)
    large = rng.normal(1.0, 1.0, 2000)
    lo, hi = bootstrap_interval(small)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_interval(large)
    assert hi2 - lo2 < (hi - lo) / 5
    assert bootstrap_interval(np.array([2.0])) == (2.0, 2.0)


def test_summarise_groups_and_skips_missing_values():
    rows = [
        {"group": "all", "method": "a", "metric": "m", "value": 1.0},
        {"group": "all", "method": "a", "metric": "m", "value": 3.0},
        {"group": "all", "method": "a", "metric": "m", "value": None},
        {"group": "grade 2", "method": "a", "metric": "m", "value": float("nan")},
        {"group": "lesion x", "method": "b", "metric": "m", "value": 5.0},
    ]
    out = summarise(rows, resamples=200)
    assert [(r["group"], r["n"], r["mean"]) for r in out] == [("all", 2, 2.0), ("lesion x", 1, 5.0)]
