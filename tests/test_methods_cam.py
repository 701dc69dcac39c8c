"""CAM's exact identity on every pooled-linear model, Grad-CAM against Captum's LayerGradCam in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.cam import cam, gradcam
from tests.helpers_methods import tiny_input, tiny_model
from tests.helpers_models import random_model

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("arch", "size"), [("tiny", 24), ("paper17", 640), ("resnet18", 64), ("densenet121", 64)]
)
def test_cam_mean_plus_bias_is_the_logit(arch, size):
    model = tiny_model() if arch == "tiny" else random_model(arch, torch.float64)
    x = torch.randn(
        1, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    res = cam(model, x)
    assert sorted(res.order) == list(range(5)) and res.order[0] == int(np.argmax(res.logits))
    head = dict(model.named_modules())[model.spec.classifier]
    b = head.bias.detach().numpy()[res.order]
    np.testing.assert_allclose(
        res.hidden.mean((1, 2)) + b, res.logits[res.order], rtol=0, atol=1e-10
    )
    assert np.abs(res.residual).max() < 1e-10
    assert res.maps.shape == (5, size, size) and res.hidden.shape[-1] > 1
    # Not the trivial answer: the maps vary over the image.
    assert res.hidden.std(axis=(1, 2)).min() > 0


def test_cam_names_what_fits_for_a_model_without_a_pooled_linear_head():
    model = random_model("inception_v3", torch.float32)
    x = torch.randn(1, 3, 107, 107)
    with pytest.raises(
        RetinaviewError, match="inception_v3 does not.*paper17, resnet18, densenet121"
    ):
        cam(model, x)


@pytest.mark.parametrize("layer", ["b1", "b2", "b2.1"])
@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_equals_captum_layergradcam(layer, relu):
    from captum.attr import LayerGradCam

    model, x = tiny_model(), tiny_input()
    res = gradcam(model, x, layer=layer, relu=relu)
    module = dict(model.named_modules())[layer]
    lgc = LayerGradCam(model, module)
    for j, c in enumerate(res.order):
        ref = lgc.attribute(x, target=c, relu_attributions=relu)[0, 0].detach().numpy()
        np.testing.assert_allclose(res.hidden[j], ref, rtol=0, atol=1e-12)
    if not relu:
        assert res.hidden.min() < 0 < res.hidden.max()
    assert res.maps.shape == (5, 24, 24)


def test_gradcam_at_the_last_layer_of_a_pooled_model_is_cam_over_positions():
    # With global average pooling + linear, alpha_ck = w_ck / (h w): Grad-CAM (signed) = CAM / (h w).
    model, x = tiny_model(), tiny_input()
    g = gradcam(model, x, layer="b2", relu=False)
    c = cam(model, x)
    np.testing.assert_allclose(g.hidden * g.hidden[0].size, c.hidden, rtol=0, atol=1e-10)


def test_gradcam_unknown_layer_names_the_choices():
    model, x = tiny_model(), tiny_input()
    with pytest.raises(RetinaviewError, match=r"unknown layer 'b9' \(choices: b1, b2"):
        gradcam(model, x, layer="b9")
