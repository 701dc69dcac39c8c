"""DRIU (Maninis et al. 2016): architecture, parameter count by hand, upsampling, re-weighting."""

from __future__ import annotations

import pytest
import torch

from retinaview.core.models.driu import DRIU, bilinear_kernel, explained_layers, gradcam_layers

torch.set_num_threads(1)


def conv(cin: int, cout: int, k: int = 3, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def test_parameter_count_at_full_width_matches_the_architecture():
    base = (
        conv(3, 64) + conv(64, 64)
        + conv(64, 128) + conv(128, 128)
        + conv(128, 256) + 2 * conv(256, 256)
        + conv(256, 512) + 2 * conv(512, 512)
    )  # fmt: skip
    sides = conv(64, 16) + conv(128, 16) + conv(256, 16) + conv(512, 16)
    upsampling = 16 * (4 * 4 + 8 * 8 + 16 * 16)  # one 2s x 2s kernel per channel, no bias
    fuse = conv(64, 1, k=1)
    model = DRIU()
    assert base == 7_635_264
    assert sum(p.numel() for p in model.parameters()) == base + sides + upsampling + fuse


def test_shapes_side_outputs_and_width():
    model = DRIU(width=0.125).eval()
    x = torch.randn(2, 3, 48, 40)
    sides = model.side_outputs(x)
    assert [tuple(s.shape) for s in sides] == [(2, 16, 48, 40)] * 4
    assert model(x).shape == (2, 1, 48, 40)
    assert model.stage4.conv4_3.out_channels == 64
    assert explained_layers(model)[-1] == "volume" and len(gradcam_layers(model)) == 14
    with pytest.raises(ValueError, match="multiple of 8"):
        model(torch.randn(1, 3, 50, 40))


def test_upsampling_starts_bilinear_and_centred():
    """A ramp stays a ramp: the transposed convolution interpolates and the crop keeps it centred."""
    k = bilinear_kernel(1, 4)
    assert torch.allclose(
        k.sum(), torch.tensor(16.0)
    )  # stride**2: interpolation preserves the mean
    model = DRIU(width=0.125).eval()
    up, crop = model.side3.up, model.side3.crop
    coarse = torch.arange(8, dtype=torch.float32).repeat(8, 1)[None, None].expand(1, 16, 8, 8)
    with torch.no_grad():
        fine = crop(up(coarse), (32, 32))[0, 0]
    row = fine[16]
    # Interior columns: value at fine column x equals the coarse coordinate (x + 0.5) / 4 - 0.5.
    xs = torch.arange(4, 28, dtype=torch.float32)
    assert torch.allclose(row[4:28], (xs + 0.5) / 4 - 0.5, atol=1e-5)


def test_branch_weights_scale_one_side_output():
    torch.manual_seed(0)
    model = DRIU(width=0.125).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        base = model(x)
        sides = model.side_outputs(x)
        model.branch_weights[1] = 2.0
        doubled = model(x)
    w = model.fuse.weight[0, 16:32, 0, 0]
    extra = (sides[1][0] * w[:, None, None]).sum(0)
    assert torch.allclose(doubled[0, 0] - base[0, 0], extra, atol=1e-5)
