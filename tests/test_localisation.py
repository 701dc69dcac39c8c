"""Lesion localisation score: chance for a uniform map, 1 for a map that is positive only on lesions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import retinaview.core.api as api
from retinaview.core.common.result import Explanation
from retinaview.train import localisation


class _Identity:
    def to_photo(self, m):
        return m


def _fake_explain(kind):
    def explain(model, image, method="rfscore", **params):
        h, w = image.shape[:2]
        if kind == "uniform":
            score = np.ones((h, w))
        else:  # positive exactly where the (dilated) lesions are: recover them from the image itself
            score = np.asarray(_fake_explain.lesions, dtype=float)
        total = np.zeros((5, h, w))
        total[1] = score
        return Explanation(
            method, np.eye(5)[1], np.eye(5)[1], total, np.ones((h, w), bool), map_kind="total",
            geometry=_Identity(),
        )  # fmt: skip

    return explain


@pytest.mark.parametrize("kind", ["uniform", "oracle"])
def test_chance_and_perfect_maps(monkeypatch, kind):
    from retinaview.core import synthetic

    real_generate = synthetic.generate

    def generate(seed, grade=None, **kw):
        sample = real_generate(seed, grade=grade, **kw)
        struct = ndimage.generate_binary_structure(2, 1)
        lesions = ndimage.binary_dilation(
            sample.lesion_union(), struct, localisation.LESION_MARGIN_PX
        )
        _fake_explain.lesions = lesions & sample.fov
        return sample

    monkeypatch.setattr(synthetic, "generate", generate)
    monkeypatch.setattr(api, "explain", _fake_explain(kind))
    out = localisation.lesion_localisation(model=None, per_grade=1)
    if kind == "uniform":
        assert out["enrichment"] == pytest.approx(1.0, rel=1e-6)
    else:
        assert out["inside_fraction"] == pytest.approx(1.0)
        assert out["enrichment"] > 5
    assert set(out["per_grade"]) == {"1", "2", "3", "4"}
