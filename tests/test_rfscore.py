"""RF score propagation: exact conservation for any CNN, and agreement with independent oracles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from retinaview.core.explain.rfscore import decompose
from tests.helpers_models import random_model, randomise


def residuals(d) -> tuple[float, float]:
    """(total, worst cut) conservation residuals relative to the L1 norm of all contributions."""
    n = len(d.order)
    logits = d.logits.double()[d.order]
    parts = [d.input.double().reshape(n, -1)] + [lay.sk.double().reshape(n, -1) for lay in d.layers]
    bias = d.bias.double()
    scale = sum(p.abs().sum(1) for p in parts) + bias.abs()
    total = ((sum(p.sum(1) for p in parts) + bias - logits).abs() / scale).max().item()
    worst_cut = 0.0
    for k, layer in enumerate(d.layers):
        after = sum(
            (lay.sk.double().reshape(n, -1).sum(1) for lay in d.layers[k + 1 :]), torch.zeros(n)
        )
        cut = layer.si.double().reshape(n, -1).sum(1) + after + bias
        worst_cut = max(worst_cut, ((cut - logits).abs() / scale).max().item())
    return total, worst_cut


CASES = [("paper17", 640), ("resnet18", 64), ("densenet121", 64), ("inception_v3", 107)]


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize(("arch", "size"), CASES)
def test_conservation_total_and_every_layer(arch, size, dtype, tol):
    model = random_model(arch, dtype)
    x = torch.randn(1, 3, size, size, dtype=dtype, generator=torch.Generator().manual_seed(1))
    d = decompose(model, x, model.spec.explained_layers, model.spec.classifier)
    assert len(d.layers) == len(model.spec.explained_layers)
    assert sorted(d.order) == list(range(5))
    assert d.order[0] == int(d.logits.argmax())
    total, cut = residuals(d)
    assert total < tol
    assert cut < tol
    # The contributions are large next to the logits: the test would notice a missing constant.
    assert d.layers[-1].sk.abs().sum() > 1e-3


def test_paper17_bias_is_the_output_bias_and_features_add_up():
    model = random_model("paper17", torch.float64)
    x = torch.randn(1, 3, 640, 640, dtype=torch.float64)
    d = decompose(model, x, model.spec.explained_layers, "classifier")
    b = model.classifier.bias.detach()[d.order]
    torch.testing.assert_close(d.bias, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(d.features.sum(1) + b, d.logits[d.order], rtol=0, atol=1e-10)
    assert d.features.shape == (5, 64)


def test_batched_backward_equals_per_class_loop():
    model = random_model("resnet18", torch.float64)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    loop = decompose(model, x, model.spec.explained_layers, "fc", batched=False)
    batch = decompose(model, x, model.spec.explained_layers, "fc", batched=True)
    torch.testing.assert_close(loop.input, batch.input)
    for a, b in zip(loop.layers, batch.layers, strict=True):
        torch.testing.assert_close(a.si, b.si)
        torch.testing.assert_close(a.sk, b.sk)


def test_predicted_class_alone():
    model = random_model("resnet18", torch.float64)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    full = decompose(model, x, model.spec.explained_layers, "fc")
    one = decompose(model, x, model.spec.explained_layers, "fc", classes="predicted")
    assert one.order == [full.order[0]]
    torch.testing.assert_close(one.input[0], full.input[0])


def test_si_matches_captum_layer_gradient_x_activation():
    captum_attr = pytest.importorskip("captum.attr")
    model = random_model("resnet18", torch.float64)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    d = decompose(model, x, model.spec.explained_layers, "fc")
    modules = dict(model.named_modules())
    for name, layer in zip(model.spec.explained_layers, d.layers, strict=True):
        lgxa = captum_attr.LayerGradientXActivation(model, modules[name])
        for row, c in enumerate(d.order):
            attr = lgxa.attribute(x, target=c)
            torch.testing.assert_close(layer.si[row], attr.sum(1)[0], rtol=1e-9, atol=1e-12)
    x.requires_grad_(True)
    ixg = captum_attr.InputXGradient(model)
    for row, c in enumerate(d.order):
        torch.testing.assert_close(
            d.input[row], ixg.attribute(x, target=c).sum(1)[0], rtol=1e-9, atol=1e-12
        )


class Tiny(nn.Module):
    """conv (bias) -> BN -> ReLU -> global average -> linear (bias): every S_k computable by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.relu(self.bn(self.conv(x))))))


def test_hand_computed_tiny_network():
    torch.manual_seed(3)
    model = randomise(Tiny()).double()
    model.layer = nn.Identity()
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    d = decompose(model, x, ["relu"], "fc", classes=[0, 1])
    # By hand: z = s * (W x + b) + t with s = gamma / sqrt(var + eps), t = beta - s * mu; a = relu(z).
    bn = model.bn
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    t = bn.bias - s * bn.running_mean
    z = model.bn(model.conv(x))
    active = (z > 0).double()[0]  # (2, 5, 5)
    w = model.fc.weight  # (2 classes, 2 channels)
    for c in range(2):
        lam = w[c].reshape(2, 1, 1) / 25 * active  # d f_c / d z
        k = (s * model.conv.bias + t).reshape(2, 1, 1)
        torch.testing.assert_close(d.layers[0].sk[c], (k * lam).sum(0).detach())
        torch.testing.assert_close(d.layers[0].si[c], (model.relu(z)[0] * lam).sum(0).detach())
    torch.testing.assert_close(d.bias, model.fc.bias.detach())


class Smooth(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), act, nn.Conv2d(4, 4, 3, stride=2), act
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.body(x)).flatten(1))


@pytest.mark.parametrize("act", [nn.SiLU(), nn.GELU(), nn.LeakyReLU(0.1)])
def test_smooth_activations_are_linearised_exactly(act):
    torch.manual_seed(0)
    model = randomise(Smooth(act)).double()
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    d = decompose(model, x, ["body"], "fc")
    total, cut = residuals(d)
    assert total < 1e-12
    assert cut < 1e-12


def test_training_mode_and_non_affine_norms_are_refused():
    from retinaview.core.common.errors import RetinaviewError

    model = random_model("resnet18").train()
    with pytest.raises(RetinaviewError, match="eval"):
        decompose(model, torch.randn(1, 3, 32, 32), model.spec.explained_layers, "fc")
    gn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.ReLU()).eval()
    with pytest.raises(RetinaviewError, match="GroupNorm"):
        decompose(gn, torch.randn(1, 3, 8, 8), ["2"])


def test_batchnorm_folding_gives_the_same_decomposition():
    from retinaview.core.explain.fold import fold_batchnorm, folded_for_explanation

    model = random_model("paper17", torch.float64)
    folded, count = fold_batchnorm(model)
    assert count == 15
    x = torch.randn(1, 3, 640, 640, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a = decompose(model, x, model.spec.explained_layers, "classifier")
    b = decompose(folded, x, model.spec.explained_layers, "classifier")
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(a.input, b.input, rtol=1e-8, atol=1e-10)
    for la, lb in zip(a.layers, b.layers, strict=True):
        torch.testing.assert_close(la.si, lb.si, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(la.sk, lb.sk, rtol=1e-8, atol=1e-10)
    assert folded_for_explanation(model) is folded_for_explanation(model)  # cached
    with torch.no_grad():
        model.classifier.bias.add_(1.0)  # weights changed: the cache notices
    assert folded_for_explanation(model).classifier.bias[0] == model.classifier.bias[0]


def test_the_callers_model_keeps_its_in_place_activations():
    model = random_model("resnet18")
    before = [name for name, m in model.named_modules() if getattr(m, "inplace", False) is True]
    assert before  # torchvision's ResNet uses ReLU(inplace=True)
    x = torch.randn(1, 3, 64, 64)
    expected = model(x)
    decompose(model, x, model.spec.explained_layers, model.spec.classifier, "predicted")
    after = [name for name, m in model.named_modules() if getattr(m, "inplace", False) is True]
    assert after == before
    torch.testing.assert_close(model(x), expected)
