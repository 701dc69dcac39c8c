"""The benchmark's Captum variants compute the same attributions as RF score propagation, so the timed
comparison is like for like."""

from __future__ import annotations

import torch

from retinaview.core.bench import captum_batched, captum_per_class, captum_per_layer
from retinaview.core.explain.rfscore import decompose
from tests.helpers_models import random_model


def test_captum_variants_agree_with_the_decomposition():
    model = random_model("resnet18", torch.float64)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    layers = list(model.spec.explained_layers)
    k = model.spec.num_classes
    d = decompose(model, x, layers, model.spec.classifier)
    si = {c: [layer.si[row] for layer in d.layers] for row, c in enumerate(d.order)}
    per_class = captum_per_class(model, x, layers)
    batched = captum_batched(model, x, layers)
    per_layer = captum_per_layer(model, x, layers)
    assert len(per_class) == k and len(batched) == len(layers) and len(per_layer) == len(layers) * k
    for c in range(k):
        for j in range(len(layers)):
            expected = si[c][j]
            torch.testing.assert_close(per_class[c][j][0], expected, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(batched[j][c], expected, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(per_layer[j * k + c][0], expected, rtol=1e-9, atol=1e-12)
