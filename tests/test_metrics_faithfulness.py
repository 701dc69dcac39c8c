"""Deletion and insertion curves: hand-computed cases and an independent one-image-per-step loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.metrics.batching import choose_batch
from retinaview.core.metrics.faithfulness import (
    fill_image,
    perturbation_curves,
    relevance_rank,
    step_counts,
)
from retinaview.core.models.registry import DR_CLASSES, ModelSpec
from tests.helpers_methods import tiny_model


class OnePixel(nn.Module):
    """Class 1's logit is 10 x the red channel at pixel (py, px); class 0's is 0."""

    def __init__(self, py: int, px: int, size: int) -> None:
        super().__init__()
        self.py, self.px = py, px
        self.w = nn.Parameter(torch.ones(1, dtype=torch.float64))
        self.spec = ModelSpec(
            arch="one-pixel",
            input_size=size,
            class_names=DR_CLASSES[:2],
            preprocessing="none",
            mean=(0.5, 0.5, 0.5),
            std=(0.25, 0.25, 0.25),
            explained_layers=(),
            classifier="",
        )

    def forward(self, x):
        v = 10 * self.w * x[:, 0, self.py, self.px]
        return torch.stack([torch.zeros_like(v), v], dim=1)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + np.exp(-v))


def test_deletion_and_insertion_by_hand():
    """A 2x2 image whose class-1 logit reads pixel (0, 1): the map ranks that pixel first, so deletion drops
    to the half-gray probability after the first of four steps and insertion reaches the photograph's."""
    model = OnePixel(0, 1, 2)
    x = torch.full((1, 3, 2, 2), 0.3, dtype=torch.float64)  # normalised value 0.3
    relevance = np.array([[0.1, 0.9], [0.5, 0.2]])
    fov = np.ones((2, 2), bool)
    p_img, p_gray = sigmoid(3.0), sigmoid(0.0)  # half-gray is 0 after normalisation
    dele, ins = perturbation_curves(model, x, relevance, fov, 1, fills=("gray",), steps=4)
    np.testing.assert_allclose(dele.fractions, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(dele.probs, [p_img, p_gray, p_gray, p_gray, p_gray], atol=1e-12)
    np.testing.assert_allclose(ins.probs, [p_gray, p_img, p_img, p_img, p_img], atol=1e-12)
    assert dele.auc == pytest.approx(0.25 * (p_img + p_gray) / 2 + 0.75 * p_gray)
    assert ins.auc == pytest.approx(0.25 * (p_img + p_gray) / 2 + 0.75 * p_img)


def test_pixels_outside_the_field_of_view_never_change():
    model = OnePixel(1, 1, 3)
    x = torch.full((1, 3, 3, 3), 0.3, dtype=torch.float64)
    fov = np.ones((3, 3), bool)
    fov[1, 1] = False
    relevance = np.zeros((3, 3))
    relevance[1, 1] = 100.0  # most relevant, but outside: never removed
    for curve in perturbation_curves(model, x, relevance, fov, 1, steps=8):
        np.testing.assert_allclose(curve.probs, sigmoid(3.0), atol=1e-12)


def naive_curve(model, x, relevance, fov, target, mode, filler, steps):
    """One forward pass per step, pixels set in a Python loop: independent of the batched code."""
    inside = [(i, j) for i in range(fov.shape[0]) for j in range(fov.shape[1]) if fov[i, j]]
    inside.sort(key=lambda ij: -relevance[ij])
    n = len(inside)
    out = []
    for k in range(steps + 1):
        count = int(np.rint(k * n / steps))
        img = x.clone() if mode == "deletion" else torch.where(torch.from_numpy(fov), filler, x)
        for i, j in inside[:count]:
            img[0, :, i, j] = filler[0, :, i, j] if mode == "deletion" else x[0, :, i, j]
        with torch.no_grad():
            out.append(torch.softmax(model(img), -1)[0, target].item())
    return np.array(out)


@pytest.mark.parametrize("fill", ["gray", "blur"])
def test_batched_curves_equal_one_forward_per_step(fill):
    torch.set_num_threads(1)
    model = tiny_model(size=16)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=g)
    relevance = np.random.default_rng(4).normal(size=(16, 16))
    yy, xx = np.mgrid[:16, :16]
    fov = (yy - 7.5) ** 2 + (xx - 7.5) ** 2 < 7.5**2
    filler = fill_image(x, fill, model.spec.mean, model.spec.std, 2.0)
    for batch in (1, 7):
        dele, ins = perturbation_curves(
            model, x, relevance, fov, 2, fills=(fill,), steps=10, blur_sigma=2.0, batch=batch
        )
        for curve in (dele, ins):
            expected = naive_curve(model, x, relevance, fov, 2, curve.mode, filler, 10)
            np.testing.assert_allclose(curve.probs, expected, atol=1e-12)
            fractions = step_counts(int(fov.sum()), 10) / fov.sum()
            assert curve.auc == pytest.approx(np.trapezoid(expected, fractions), abs=1e-12)


def test_fills():
    model = tiny_model(size=8)
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    gray = fill_image(x, "gray", model.spec.mean, model.spec.std)
    mean = torch.tensor(model.spec.mean, dtype=torch.float64).reshape(1, 3, 1, 1)
    std = torch.tensor(model.spec.std, dtype=torch.float64).reshape(1, 3, 1, 1)
    torch.testing.assert_close(gray * std + mean, torch.full_like(x, 0.5))
    blur = fill_image(x, "blur", model.spec.mean, model.spec.std, 1.5)
    expected = ndimage.gaussian_filter(x[0, 1].numpy(), 1.5, mode="nearest")
    np.testing.assert_allclose(blur[0, 1].numpy(), expected)
    with pytest.raises(RetinaviewError, match="unknown fill"):
        fill_image(x, "noise", model.spec.mean, model.spec.std)


def test_rank_and_counts():
    fov = np.array([[True, True], [False, True]])
    rank = relevance_rank(np.array([[1.0, 3.0], [9.0, 2.0]]), fov)
    assert rank[0, 1] == 0 and rank[1, 1] == 1 and rank[0, 0] == 2 and rank[1, 0] == 4
    np.testing.assert_array_equal(step_counts(3, 4), [0, 1, 2, 2, 3])
    with pytest.raises(RetinaviewError, match="NaN"):
        relevance_rank(np.array([[np.nan, 1.0], [0.0, 1.0]]), fov)
    with pytest.raises(RetinaviewError, match="empty"):
        relevance_rank(np.zeros((2, 2)), np.zeros((2, 2), bool))


def test_batch_size_follows_memory(monkeypatch):
    import retinaview.core.metrics.batching as batching

    model = tiny_model(size=16)
    x = torch.zeros(1, 3, 16, 16, dtype=torch.float64)
    per_image = batching.activation_bytes(model, x)
    assert per_image > x.numel() * 8
    monkeypatch.setattr(batching, "available_bytes", lambda device: per_image * 4 * 10)
    assert choose_batch(model, x, limit=64) == 10
    assert choose_batch(model, x) == batching.MAX_BATCH_CPU
    monkeypatch.setattr(batching, "available_bytes", lambda device: 0)
    assert choose_batch(model, x) == 1
