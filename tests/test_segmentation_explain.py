"""Explaining DRIU: per-layer Grad-CAM against Captum, RF score conservation, RF through transposed convs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from retinaview.core.explain.segmentation import gradcam_layers, layer_gradcams, summed_logit
from retinaview.core.models.driu import DRIU

torch.set_num_threads(1)


def small_driu(dtype=torch.float64, seed=0) -> DRIU:
    torch.manual_seed(seed)
    model = DRIU(width=0.0625).to(dtype).eval()
    with torch.no_grad():
        # Random non-zero biases, so every constant of the decomposition is exercised.
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0, 0.1)
    return model


def box(size: int, top: int, left: int, h: int, w: int) -> np.ndarray:
    r = np.zeros((size, size), dtype=bool)
    r[top : top + h, left : left + w] = True
    return r


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("relu", [True, False])
def test_layer_gradcams_match_captum_per_layer(size, relu):
    from captum.attr import LayerAttribution, LayerGradCam

    model = small_driu()
    torch.manual_seed(1)
    x = torch.randn(1, 3, size, size, dtype=torch.float64)
    brush = np.zeros((size, size), dtype=bool)
    brush[np.arange(size), np.arange(size)] = True  # a diagonal stroke
    for region in (None, box(size, 4, 8, 12, 10), brush):
        maps = layer_gradcams(model, x, region=region, relu=relu)
        assert list(maps) == gradcam_layers(model)
        weight = torch.ones(size, size, dtype=torch.float64)
        if region is not None:
            weight = torch.from_numpy(region).double()

        def forward(inp, weight=weight):
            return summed_logit(model(inp), weight)

        modules = dict(model.named_modules())
        for name in gradcam_layers(model):
            attr = LayerGradCam(forward, modules[name]).attribute(x, relu_attributions=relu)
            ref = LayerAttribution.interpolate(attr, (size, size), "bilinear")[0, 0].detach()
            assert maps[name].dtype == np.float64 and maps[name].shape == (size, size)
            np.testing.assert_allclose(
                maps[name], ref.numpy(), rtol=1e-9, atol=1e-12 * float(ref.abs().max() + 1)
            )
        if not relu:
            assert any((m < 0).any() for m in maps.values())  # the signed maps keep "against"


def test_layer_gradcams_leave_the_model_as_it_was():
    model = small_driu(torch.float32)
    x = torch.randn(1, 3, 32, 32)
    maps = layer_gradcams(model, x, layers=["stage1.relu1_2", "side4"])
    assert list(maps) == ["stage1.relu1_2", "side4"]
    assert all(p.requires_grad for p in model.parameters())
    assert not model._forward_hooks and not model.side4._forward_hooks
    with pytest.raises(Exception, match="no pixel"):
        layer_gradcams(model, x, region=np.zeros((32, 32), bool))
    with pytest.raises(Exception, match="does not match"):
        layer_gradcams(model, x, region=np.ones((16, 16), bool))


@pytest.fixture(scope="module")
def vessel_model(tmp_path_factory):
    from retinaview.core.checkpoint import save_checkpoint
    from retinaview.core.model_loading import load_model
    from retinaview.core.models.registry import build_model

    torch.manual_seed(0)
    config = {"num_classes": 1, "width": 0.0625, "input_size": 64, "task": "vessels"}
    model, spec = build_model("driu", config)
    path = save_checkpoint(tmp_path_factory.mktemp("m") / "driu.pt", model, spec)
    return load_model(path)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from retinaview.core.synthetic import generate

    path = tmp_path_factory.mktemp("img") / "eye.png"
    Image.fromarray(generate(4, size=96).image).save(path)
    return path


def test_vessel_gradcams_on_a_photograph_match_segment(vessel_model, photo):
    from retinaview.core.explain.segmentation import region_on_model, vessel_gradcams
    from retinaview.core.segment import segment

    result = vessel_gradcams(vessel_model, str(photo))
    seg = segment(vessel_model, str(photo))
    np.testing.assert_allclose(result.segmentation.logits, seg.logits, atol=1e-5)
    assert set(result.maps) == set(gradcam_layers(vessel_model))
    assert all(m.shape == (64, 64) and (m >= 0).all() for m in result.maps.values())
    assert result.target == pytest.approx(float(seg.logits.astype(np.float64).sum()), rel=1e-4)
    # A rectangle drawn on the photograph becomes a region on the model's grid.
    region = region_on_model(result.segmentation, box(96, 20, 30, 40, 30))
    assert region.shape == (64, 64) and 0 < region.sum() < 64 * 64
    part = vessel_gradcams(vessel_model, str(photo), region=region, relu=False)
    assert part.target == pytest.approx(
        float(seg.logits.astype(np.float64)[region].sum()), rel=1e-4, abs=1e-4
    )
