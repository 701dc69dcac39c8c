"""Receptive-field arithmetic and the Gaussian RF mapping to input space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.common.gaussian_rf import (
    gaussian_matrix,
    linear_mass_matrix,
    map_to_input,
    spread_constant,
)
from retinaview.core.explain.receptive_field import paper_rf_sizes, receptive_fields
from retinaview.core.models.registry import build_model

# Hand-computed for paper17, pools included: (RF size, jump, centre of unit 0, output side).
# Each 3x3 conv adds 2 * jump; each 2x2 pool adds one jump, doubles it and moves the centre by jump / 2;
# layer 15 (2x2 conv, no padding) adds one jump of 128.
PAPER17_RF = [
    (3, 1, 0.0, 640),
    (5, 1, 0.0, 640),
    (10, 2, 0.5, 320),
    (14, 2, 0.5, 320),
    (24, 4, 1.5, 160),
    (32, 4, 1.5, 160),
    (52, 8, 3.5, 80),
    (68, 8, 3.5, 80),
    (108, 16, 7.5, 40),
    (140, 16, 7.5, 40),
    (220, 32, 15.5, 20),
    (284, 32, 15.5, 20),
    (444, 64, 31.5, 10),
    (572, 64, 31.5, 10),
    (764, 128, 127.5, 4),
]


def test_paper17_receptive_fields_by_hand():
    model, spec = build_model("paper17")
    rfs = receptive_fields(model, spec.explained_layers, 640)
    got = [(r.rf, r.jump, r.offset[0], r.shape[-1]) for r in rfs]
    assert got == PAPER17_RF
    assert all(r.offset[0] == r.offset[1] for r in rfs)


def test_paper_list_leaves_pools_out():
    sizes = paper_rf_sizes()
    assert sizes[:3] == [3, 5, 9]
    assert sizes[-1] == 637


def test_resnet_stem_and_fully_connected_layers():
    model, spec = build_model("resnet18")
    rfs = receptive_fields(model, spec.explained_layers, 224)
    # 7x7 stride-2 conv, padding 3: RF 7, jump 2, unit 0 centred at pixel 0.
    assert (rfs[0].rf, rfs[0].jump, rfs[0].offset) == (7, 2, (0.0, 0.0))
    assert all(a.rf <= b.rf for a, b in zip(rfs, rfs[1:], strict=False))
    model, spec = build_model("inception_v3")
    rfs = receptive_fields(model, spec.explained_layers, 299)
    assert rfs[-1].rf == 299  # a fully connected unit sees the whole image


@pytest.mark.parametrize(
    ("n", "rf", "jump", "offset"), [(4, 764, 128, 127.5), (640, 3, 1, 0), (20, 220, 32, 15.5)]
)
def test_gaussian_columns_sum_to_one_inside_the_field(n, rf, jump, offset):
    g = gaussian_matrix(n, 640, rf, jump, offset)
    np.testing.assert_allclose(g.sum(0), 1.0, rtol=0, atol=1e-12)
    assert (g >= 0).all()
    coords = np.arange(640)[:, None]
    centres = offset + jump * np.arange(n)[None, :]
    assert (g[np.abs(coords - centres) > (rf - 1) / 2] == 0).all()
    # Peak at the unit's centre (where the centre is inside the image).
    inside = (centres[0] >= 0) & (centres[0] <= 639)
    assert np.all(np.abs(g.argmax(0)[inside] - np.rint(centres[0][inside])) <= 1)


def test_gaussian_sigma_is_a_quarter_of_the_field():
    g = gaussian_matrix(1, 101, 40, 1, 50)[:, 0]  # sigma = 10
    assert g[50 + 10] / g[50] == pytest.approx(np.exp(-0.5), rel=1e-12)
    assert g[50 + 19] > 0.0
    assert g[50 + 20] == 0.0  # truncated to the field: 40 pixels, centre +-19.5


def test_map_to_input_conserves_mass():
    rng = np.random.default_rng(0)
    for rf, jump, offset, h in PAPER17_RF[::3]:
        m = rng.normal(size=(5, h, h))
        out = map_to_input(m, rf, jump, offset, (640, 640))
        assert out.shape == (5, 640, 640)
        rel = np.abs(out.sum((1, 2)) - m.sum((1, 2))) / np.abs(m).sum((1, 2))
        assert rel.max() < 1e-5
    t = torch.from_numpy(rng.normal(size=(2, 10, 10))).float()
    out = map_to_input(t, 444, 64, 31.5, (640, 640))
    torch.testing.assert_close(out.sum((1, 2)), t.sum((1, 2)), rtol=1e-5, atol=1e-4)


def test_bias_spread_and_mass_resampling():
    out = spread_constant(np.array([2.0, -1.0]), (64, 48))
    np.testing.assert_allclose(out.sum((1, 2)), [2.0, -1.0])
    assert (
        out[0].argmax() == np.ravel_multi_index((31, 23), (64, 48))
        or out[0, 32, 24] == out[0].max()
    )
    w = linear_mass_matrix(7, 3)
    np.testing.assert_allclose(w.sum(0), np.ones(7), rtol=0, atol=1e-12)


def test_sparse_numpy_and_dense_torch_mappings_agree():
    from retinaview.engine.layers import map_maps

    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 20, 20))
    dense = map_to_input(torch.from_numpy(m), 94, 32, 15.5, (640, 640)).numpy()
    sparse = map_to_input(m, 94, 32, 15.5, (640, 640))
    np.testing.assert_allclose(sparse, dense, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.sum((1, 2)), m.sum((1, 2)), rtol=1e-10)
    inspector = map_maps(m, 94, 32, (15.5, 15.5), (640, 640))
    assert inspector.dtype == np.float32
    np.testing.assert_allclose(inspector, dense, rtol=1e-4, atol=1e-7)
