"""Augmentation for fundus images: rotation 0-360 about the centre, flips, brightness and contrast jitter.

Works on float tensors in [0, 1] of shape (N, C, H, W) (a batch, or one sample as N = 1). Every random
number comes from the ``generator`` passed in, so a sample's augmentation is fixed by its seed; the
training data loader seeds one generator per (seed, epoch, index), which makes runs reproducible and
resumable whatever the number of workers.

Rotation uses one ``grid_sample`` (bilinear); what rotates in from outside the frame is black, like the
fundus surround. Brightness is multiplicative, contrast scales about each image's mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations apply, and how strongly."""

    rotate: bool = True
    hflip: float = 0.5
    vflip: float = 0.5
    brightness: float = 0.2  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2  # factor drawn from [1 - c, 1 + c]


def augment(
    x: torch.Tensor, generator: torch.Generator | None = None, config: AugmentConfig | None = None
) -> torch.Tensor:
    """Augmented copy of a batch.

    Parameters
    ----------
    x : torch.Tensor
        (N, C, H, W) float in [0, 1].
    generator : torch.Generator, optional
        Source of every random number; a seeded one fixes the result.
    config : AugmentConfig, optional
        Default `AugmentConfig()`.

    Returns
    -------
    torch.Tensor
        Same shape, values clamped to [0, 1].
    """
    cfg = config or AugmentConfig()
    n = x.shape[0]
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    out = x
    if cfg.rotate or cfg.hflip or cfg.vflip:
        angle = rand(n) * (2 * math.pi) if cfg.rotate else torch.zeros(n, device=dev)
        sx = torch.where(rand(n) < cfg.hflip, -1.0, 1.0)
        sy = torch.where(rand(n) < cfg.vflip, -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Output (u, v) samples input R @ diag(sx, sy) @ (u, v): a flip then a rotation, about the centre.
        theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
        theta[:, 0, 0] = cos * sx
        theta[:, 0, 1] = -sin * sy
        theta[:, 1, 0] = sin * sx
        theta[:, 1, 1] = cos * sy
        grid = functional.affine_grid(theta, list(x.shape), align_corners=False)
        out = functional.grid_sample(
            out, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    if cfg.brightness or cfg.contrast:
        b = 1 + (rand(n) * 2 - 1) * cfg.brightness
        c = 1 + (rand(n) * 2 - 1) * cfg.contrast
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * c.view(n, 1, 1, 1) + mean
        out = out * b.view(n, 1, 1, 1)
    return out.clamp_(0.0, 1.0)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator fixed by (seed, epoch, index): one sample's augmentation in one epoch."""
    g = torch.Generator()
    g.manual_seed(((seed * 1_000_003 + epoch) * 10_000_019 + index) & 0x7FFF_FFFF_FFFF_FFFF)
    return g
