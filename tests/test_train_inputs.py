"""One input normalisation for training, evaluation and the viewer (`retinaview.core.models.inputs`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from retinaview.core import synthetic
from retinaview.core.models.inputs import normalise, to_input
from retinaview.core.models.registry import DR_CLASSES, ModelSpec
from retinaview.train import data
from retinaview.train.predict import predict
from tests.helpers_train import fake_generate

SPEC = ModelSpec(
    arch="tiny-test",
    input_size=32,
    class_names=DR_CLASSES,
    preprocessing="none",
    mean=(0.45, 0.25, 0.12),
    std=(0.3, 0.18, 0.1),
    explained_layers=(),
    classifier="fc",
)


class Recorder(nn.Module):
    """Keeps every input it sees; grades by the mean of the red channel."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 5).to(dtype)
        self.spec = SPEC
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.fc(x[:, :1].mean((2, 3)))


def test_normalise_is_mean_and_std_per_channel():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2, 3, 5, 7), dtype=np.uint8)
    mean = np.array(SPEC.mean).reshape(1, 3, 1, 1)
    std = np.array(SPEC.std).reshape(1, 3, 1, 1)
    expected = (image / 255.0 - mean) / std
    got = normalise(torch.from_numpy(image), SPEC)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-5)
    as_float = normalise(torch.from_numpy(image / 255.0), SPEC)
    assert as_float.dtype == torch.float64
    np.testing.assert_allclose(as_float.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_normalise_rejects_what_is_not_an_image_batch():
    with pytest.raises(ValueError, match="expected"):
        normalise(torch.zeros(3, 4, 4), SPEC)
    with pytest.raises(ValueError, match="uint8 or floating-point"):
        normalise(torch.zeros(1, 3, 4, 4, dtype=torch.int32), SPEC)


def test_to_input_follows_the_models_dtype():
    image01 = np.random.default_rng(1).random((6, 4, 3)).astype(np.float32)
    model = Recorder(torch.float64)
    x = to_input(model, image01)
    assert x.shape == (1, 3, 6, 4) and x.dtype == torch.float64
    expected = (
        image01.transpose(2, 0, 1)[None] - np.array(SPEC.mean).reshape(1, 3, 1, 1)
    ) / np.array(SPEC.std).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_evaluation_feeds_the_model_what_the_viewer_feeds_it(monkeypatch):
    """The batch `predict` gives the model is `to_input` of each cached 8-bit image, bit for bit."""
    monkeypatch.setattr(synthetic, "generate", fake_generate)
    dataset = data.SynthDataset(3, seed=5, size=32, chain="none")
    model = Recorder()
    predict(model, SPEC, dataset, batch=3)
    (batch,) = model.seen
    for i in range(3):
        image, _ = dataset.sample(0, i)
        viewer = to_input(model, image.astype(np.float32) / 255.0)
        assert torch.equal(batch[i : i + 1], viewer)
