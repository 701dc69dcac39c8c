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


def _conservation(dec, target: float) -> float:
    """Worst |cut - target| / scale over the input and every explained layer's cut (as Explanation.residual)."""
    sk = [float(layer.sk.sum()) for layer in dec.layers]
    bias = float(dec.bias.sum())
    parts = [float(dec.input.abs().sum()), *[float(layer.sk.abs().sum()) for layer in dec.layers]]
    scale = sum(parts) + abs(bias) + abs(target)
    worst = abs(float(dec.input.sum()) + sum(sk) + bias - target)
    for k, layer in enumerate(dec.layers):
        worst = max(worst, abs(float(layer.si.sum()) + sum(sk[k + 1 :]) + bias - target))
    return worst / scale


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_rfscore_of_a_region_is_conserved(dtype, tol):
    from retinaview.core.explain.segmentation import vessel_decomposition

    model = small_driu(dtype)
    # A bias on every transposed convolution too, so their constants are exercised.
    for side in (model.side2, model.side3, model.side4):
        side.up.bias = torch.nn.Parameter(torch.randn(side.up.out_channels, dtype=dtype) * 0.1)
    torch.manual_seed(2)
    x = torch.randn(1, 3, 32, 32, dtype=dtype)
    logits = model(x).detach().double()
    for region in (None, box(32, 3, 5, 11, 17)):
        dec = vessel_decomposition(model, x, region)
        weight = torch.ones(32, 32) if region is None else torch.from_numpy(region)
        target = float((logits[0, 0] * weight.double()).sum())
        assert dec.logits.shape == (1,) and float(dec.logits[0]) == pytest.approx(target, rel=1e-5)
        assert [layer.name for layer in dec.layers] == [
            "stage1.relu1_1",
            "stage1.relu1_2",
            "volume",
        ]
        assert _conservation(dec, target) < tol
        # The only constant after the volume is the fuse bias at each pixel of the region.
        area = float(weight.sum())
        assert float(dec.bias[0]) == pytest.approx(model.fuse.bias.item() * area, rel=1e-5)
        # The transposed convolutions' biases are constants of the volume, not lost.
        assert float(dec.layers[-1].sk.abs().sum()) > 0


def test_rfscore_without_the_transposed_bias_constant_is_not_conserved(monkeypatch):
    """The check can fail: dropping the transposed convolutions' constants breaks conservation."""
    from retinaview.core.explain import rfscore
    from retinaview.core.explain.segmentation import vessel_decomposition

    model = small_driu()
    for side in (model.side2, model.side3, model.side4):
        side.up.bias = torch.nn.Parameter(torch.randn(side.up.out_channels).double() * 0.1)
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    monkeypatch.setattr(rfscore, "_AFFINE_WITH_BIAS", (torch.nn.Conv2d, torch.nn.Linear))
    dec = vessel_decomposition(model, x)
    assert _conservation(dec, float(model(x).detach().sum())) > 1e-6


def test_vessel_rfscore_explanation(vessel_model, photo):
    from retinaview.core.explain.segmentation import vessel_rfscore
    from retinaview.core.segment import segment

    seg = segment(vessel_model, str(photo))
    region = box(64, 10, 20, 16, 24)
    for r in (None, region):
        ex = vessel_rfscore(vessel_model, str(photo), region=r)
        target = seg.logits.astype(np.float64)[r if r is not None else slice(None)].sum()
        assert ex.maps.shape == (1, 64, 64) and ex.check_name == "conservation residual"
        assert ex.check < 1e-5 and ex.check == ex.residual()
        assert float(ex.maps.sum()) == pytest.approx(float(ex.logits[0]), rel=1e-4, abs=1e-3)
        assert float(ex.logits[0]) == pytest.approx(float(target), rel=1e-4, abs=1e-3)
        assert [layer.rf for layer in ex.layers][:2] == [3, 5]
        assert ex.layers[-1].jump == 1 and ex.layers[-1].si.shape == (1, 64, 64)
    # The constant map is every layer's S_k mapped to input space plus the fuse bias on the region.
    constants = sum(float(layer.sk.sum()) for layer in ex.layers) + float(ex.bias[0])
    assert float(ex.kind("constant")[0].sum()) == pytest.approx(constants, rel=1e-4, abs=1e-4)
    assert ex.params["region_pixels"] == int(region.sum())


def _column_support(net, n: int, ox: int, out_size) -> tuple[int, int] | None:
    """First and last input column that output column ``ox`` depends on (None: it reads no input)."""
    x = torch.ones(1, 3, n, n, dtype=torch.float64, requires_grad=True)
    out = net(x)
    assert tuple(out.shape[-2:]) == out_size
    (g,) = torch.autograd.grad(out[0, 0, :, ox].sum(), x)
    cols = torch.nonzero(g[0].abs().sum((0, 1)) > 0).flatten()
    if cols.numel() == 0:
        return None  # a hole of a dilated transposed convolution
    return int(cols.min()), int(cols.max())


class _Chain(torch.nn.Module):
    """conv 3x3 -> 2x2 average pool -> transposed conv -> crop to the input size, all weights positive."""

    def __init__(self, k: int, s: int, p: int, d: int, crop: bool) -> None:
        super().__init__()
        from retinaview.core.models.driu import CentreCrop

        self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)
        self.pool = torch.nn.AvgPool2d(2)
        self.up = torch.nn.ConvTranspose2d(2, 2, k, stride=s, padding=p, dilation=d)
        self.crop = CentreCrop() if crop else None
        self.out = torch.nn.Identity()
        for m in (self.conv, self.up):
            torch.nn.init.constant_(m.weight, 1.0)
        self.double()

    def forward(self, x):
        y = self.up(self.pool(self.conv(x)))
        if self.crop is not None:
            y = self.crop(y, (x.shape[-2], x.shape[-1]))
        return self.out(y)


@pytest.mark.parametrize(
    ("k", "s", "p", "d", "crop"),
    [
        (4, 2, 0, 1, True),
        (3, 2, 1, 1, False),
        (16, 8, 0, 1, True),
        (3, 2, 0, 2, False),
        (5, 3, 1, 1, False),
    ],
)
def test_receptive_field_through_transposed_conv_matches_gradient_support(k, s, p, d, crop):
    from retinaview.core.explain.receptive_field import receptive_fields

    net = _Chain(k, s, p, d, crop).eval()
    n = 48
    (rf,) = receptive_fields(net, ["out"], n)
    out_size = tuple(net(torch.zeros(1, 3, n, n, dtype=torch.float64)).shape[-2:])
    assert rf.x.jump == pytest.approx(2 / s) and rf.y == rf.x
    need = []
    for o in range(out_size[1]):
        extent = _column_support(net, n, o, out_size)
        if extent is None:
            continue
        lo, hi = extent
        if lo == 0 or hi == n - 1:
            continue  # the field is cut by the image's border (padding)
        centre = rf.x.start + o * rf.x.jump
        # Every unit's inputs lie in its field ...
        assert centre - rf.x.size / 2 <= lo - 0.5 + 1e-9
        assert hi + 0.5 <= centre + rf.x.size / 2 + 1e-9
        need.append(2 * max(centre - (lo - 0.5), hi + 0.5 - centre))
    # ... and the field is no larger than the widest unit needs.
    assert len(need) > 4 and max(need) == pytest.approx(rf.x.size)


def test_driu_side_outputs_are_centred_with_unit_jump():
    from retinaview.core.explain.receptive_field import receptive_fields

    model = small_driu()
    rfs = receptive_fields(model, ["side1", "side2", "side3", "side4", "volume"], 64)
    for r in rfs:
        assert r.y.jump == 1 and r.x.jump == 1
        # Unit 0 of every side output is centred on input pixel 0 (up to the crop's half-pixel rounding).
        assert abs(r.x.start) <= 0.5
    assert rfs[-1].rf >= rfs[3].rf > rfs[2].rf > rfs[1].rf > rfs[0].rf
