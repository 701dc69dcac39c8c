"""A small classifier with a spec, in float64, for the explanation-method oracle tests."""

from __future__ import annotations

import torch
from torch import nn

from retinaview.core.models.registry import DR_CLASSES, FUNDUS_MEAN, FUNDUS_STD, ModelSpec
from tests.helpers_models import randomise


class Tiny(nn.Module):
    """conv-BN-ReLU, max pool, conv-BN-ReLU, global average pool, linear: CAM's head.

    ``smooth``: Softplus and average pooling instead, so the function is smooth along any path.
    """

    def __init__(self, smooth: bool = False) -> None:
        super().__init__()
        act = nn.Softplus if smooth else nn.ReLU
        self.b1 = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), act())
        self.pool = nn.AvgPool2d(2) if smooth else nn.MaxPool2d(2)
        self.b2 = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), act())
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        return self.head(self.gap(self.b2(self.pool(self.b1(x)))).flatten(1))


def tiny_model(smooth: bool = False, seed: int = 0, size: int = 24) -> nn.Module:
    torch.manual_seed(seed)
    model = randomise(Tiny(smooth), seed).double()
    model.spec = ModelSpec(
        arch="tiny",
        input_size=size,
        class_names=DR_CLASSES,
        preprocessing="paper",
        mean=FUNDUS_MEAN,
        std=FUNDUS_STD,
        explained_layers=("b1", "b2"),
        classifier="head",
    )
    return model


def tiny_input(size: int = 24, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, size, size, dtype=torch.float64, generator=g)
