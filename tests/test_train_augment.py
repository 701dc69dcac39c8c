"""Augmentation keeps shape and range, is seeded, and rotates about the centre."""

from __future__ import annotations

import torch

from retinaview.train.augment import AugmentConfig, augment, sample_generator


def test_shape_range_and_determinism():
    x = torch.rand(4, 3, 40, 40)
    a = augment(x, sample_generator(1, 2, 3))
    b = augment(x, sample_generator(1, 2, 3))
    c = augment(x, sample_generator(1, 2, 4))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_when_everything_is_off():
    x = torch.rand(2, 3, 16, 16)
    cfg = AugmentConfig(rotate=False, hflip=0, vflip=0, brightness=0, contrast=0)
    assert torch.allclose(augment(x, torch.Generator().manual_seed(0), cfg), x, atol=1e-6)


def test_flip_only_is_a_flip_and_centre_disc_is_kept():
    x = torch.rand(1, 3, 16, 16)
    cfg = AugmentConfig(rotate=False, hflip=1.0, vflip=0, brightness=0, contrast=0)
    assert torch.allclose(augment(x, torch.Generator().manual_seed(0), cfg), x.flip(3), atol=1e-5)
    # a centred disc stays a centred disc under any rotation
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    disc = (((yy - 31.5) ** 2 + (xx - 31.5) ** 2) < 20**2).float().expand(1, 3, 64, 64)
    out = augment(disc, torch.Generator().manual_seed(5), AugmentConfig(brightness=0, contrast=0))
    assert (out - disc).abs().mean() < 0.02
