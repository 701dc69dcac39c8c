"""The engine with the real torch backend and small real models (ResNet-18 at 64 px): what the numpy stand-in
cannot show (model identity in cache keys, feature maps of the model that actually runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from retinaview.engine.backend import TorchBackend
from tests.helpers_models import small_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    return small_checkpoint(folder / "a.pt", 1, SIZE), small_checkpoint(folder / "b.pt", 2, SIZE)


def _image(seed: int, size: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = np.hypot(yy - size / 2, xx - size / 2) < 0.45 * size
    img = rng.integers(40, 220, (size, size, 3)) * disc[..., None]
    return img.astype(np.uint8)


def _oracle_feature_maps(model, image: np.ndarray) -> np.ndarray:
    """w_cj * a_j / (h * w) from the original (unfolded) model's last explained layer, by a plain hook."""
    from retinaview.core.explain.methods import to_input
    from retinaview.core.preprocess import preprocess

    spec = model.spec
    seen = []
    module = dict(model.named_modules())[spec.explained_layers[-1]]
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            model(to_input(model, preprocess(image, spec.preprocessing, spec.input_size).image))
    finally:
        handle.remove()
    a = seen[0][0].double()
    w = dict(model.named_modules())[spec.classifier].weight.detach().double()
    return (w[:, :, None, None] * a[None] / (a.shape[1] * a.shape[2])).numpy()


def test_feature_maps_are_those_of_the_model_that_runs_every_time(checkpoints):
    backend = TorchBackend()
    model, _info = backend.load(str(checkpoints[0]))
    image = _image(0)
    oracle = _oracle_feature_maps(model, image)
    results = [backend.explain(model, image, "rfscore", {}) for _ in range(3)]
    for ex in results:
        assert ex.feature_maps is not None
        np.testing.assert_allclose(ex.feature_maps, oracle, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(ex.feature_maps.sum((2, 3)), ex.features, rtol=1e-3, atol=1e-6)
    # No hook is left behind on the model or on the copy the explanation runs on.
    folded = model._retinaview_folded[1]
    for net in (model, folded):
        assert not any(m._forward_hooks for m in net.modules())
