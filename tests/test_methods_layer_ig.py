"""Layer and neuron integrated gradients against Captum's LayerIntegratedGradients and
NeuronIntegratedGradients in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.ig import make_baseline
from retinaview.core.explain.layer_ig import layer_attributions, layer_ig
from tests.helpers_methods import tiny_input, tiny_model

torch.set_num_threads(1)


@pytest.mark.parametrize("layer", ["b1", "b2"])
def test_layer_attributions_equal_captum(layer):
    from captum.attr import LayerIntegratedGradients

    model, x = tiny_model(), tiny_input()
    base = make_baseline(model, x, "halfgray")
    ours = layer_attributions(model, x, base, layer, 3, steps=9, batch_size=4)
    module = dict(model.named_modules())[layer]
    ref = LayerIntegratedGradients(model, module).attribute(x, base, target=3, n_steps=9)[0]
    np.testing.assert_allclose(
        ours.numpy(), ref.numpy(), rtol=0, atol=1e-7 * ref.abs().max().item()
    )
    assert ref.abs().max() > 1e-4


def test_layer_ig_ranks_channels_and_its_pixel_maps_equal_captum_neuron_ig():
    from captum.attr import NeuronIntegratedGradients

    model, x = tiny_model(), tiny_input()
    res = layer_ig(model, x, layer="b2", top_k=2, steps=9)
    assert res.target == int(np.argmax(res.logits))
    assert sorted(res.ranked) == list(range(8))
    attr = res.channel_attr
    assert all(attr[a] >= attr[b] for a, b in zip(res.ranked, res.ranked[1:], strict=False))
    assert res.positive and res.negative
    assert all(attr[i] > 0 for i in res.positive) and all(attr[i] < 0 for i in res.negative)
    # The layer path is exactly complete for the linear head after b2 (GAP + linear).
    assert res.completeness < 1e-10
    base = make_baseline(model, x, "halfgray")
    nig = NeuronIntegratedGradients(model, model.b2)
    for j, ch in enumerate(res.positive + res.negative):
        ref = nig.attribute(
            x, lambda out, ch=ch: out[:, ch].sum((1, 2)), baselines=base, n_steps=9
        )[0].sum(0)
        np.testing.assert_allclose(
            res.channel_maps[j], ref.numpy(), rtol=0, atol=1e-7 * ref.abs().max().item()
        )
    npos = len(res.positive)
    expect = np.tensordot(attr[res.positive], res.channel_maps[:npos], axes=1)
    np.testing.assert_allclose(res.positive_map, expect, rtol=1e-12, atol=0)
    expect = np.tensordot(attr[res.negative], res.channel_maps[npos:], axes=1)
    np.testing.assert_allclose(res.negative_map, expect, rtol=1e-12, atol=0)


def test_layer_ig_bad_layer_and_target():
    model, x = tiny_model(), tiny_input()
    with pytest.raises(RetinaviewError, match="unknown layer 'nope'"):
        layer_ig(model, x, layer="nope")
    with pytest.raises(RetinaviewError, match="target=7 out of range"):
        layer_ig(model, x, layer="b1", target=7)
