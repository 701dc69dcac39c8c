"""The method-neutral `Explanation`: map kinds declared by the method, its own check, the npz layout."""

from __future__ import annotations

import numpy as np
import pytest

from retinaview.core.common.result import Explanation, class_order
from retinaview.engine.prepare import prepare_explanation


def _one_map_explanation() -> Explanation:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 8, 8)).astype(np.float32)
    logits = np.array([0.1, 2.0, -1.0])
    return Explanation(
        method="saliency",
        logits=logits,
        probs=np.exp(logits) / np.exp(logits).sum(),
        maps=maps,
        fov=np.ones((8, 8), bool),
        check_name="completeness error",
        check=0.01,
    )


def test_a_method_with_one_map_kind_prepares_and_saves_only_that():
    ex = _one_map_explanation()
    assert ex.kinds == ("map",) and ex.total is None and ex.input is None
    assert ex.residual() == 0.0
    assert list(prepare_explanation(ex)) == ["map"]
    npz = ex.to_npz_dict()
    assert str(npz["map_kind"]) == "map" and str(npz["method"]) == "saliency"
    np.testing.assert_array_equal(npz[str(npz["map_kind"])], ex.maps)
    assert str(npz["check_name"]) == "completeness error" and float(npz["check"]) == 0.01
    assert "total" not in npz and "layers" not in npz
    with pytest.raises(KeyError, match="saliency has no 'total'"):
        ex.kind("total")


def test_rfscore_kinds_keep_the_npz_keys_and_derive_the_constant():
    from tests.fake_backend import fake_explanation

    ex = fake_explanation(
        np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8), (32, 32)
    )
    assert ex.kinds == ("total", "input", "constant")
    np.testing.assert_array_equal(ex.kind("constant"), ex.total - ex.input)
    assert list(prepare_explanation(ex)) == ["total", "input", "constant"]
    npz = ex.to_npz_dict()
    for key in (
        "logits",
        "probs",
        "bias",
        "input",
        "total",
        "fov",
        "layers",
        "si_0",
        "sk_0",
        "rf_0",
    ):
        assert key in npz, key
    assert str(npz["map_kind"]) == "total" and ex.check == ex.residual() < 1e-6


def test_class_order():
    assert class_order(2, 4) == [2, 0, 1, 3]
    assert class_order(2, 4, "predicted") == [2]
    assert class_order(2, 4, (3, 0)) == [3, 0]
    with pytest.raises(ValueError):
        class_order(2, 4, [4])
