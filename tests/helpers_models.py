"""Models with random weights and random batch-norm statistics, for exactness tests."""

from __future__ import annotations

import torch
from torch import nn

from retinaview.core.models.registry import build_model


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, random biases: every constant is non-zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) - 0.5) * 0.2)
    return model.eval()


def random_model(arch: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model, spec = build_model(arch)
    model.spec = spec
    return randomise(model, seed).to(dtype)


def small_checkpoint(path, seed: int = 0, size: int = 64):
    """A ResNet-18 checkpoint at ``size`` px with random weights and statistics: a real model that explains
    in well under a second on a CPU. Returns the path."""
    from retinaview.core.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    model, spec = build_model("resnet18", {"input_size": size})
    return save_checkpoint(path, randomise(model, seed), spec)
