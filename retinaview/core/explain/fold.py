"""Fold eval-mode batch norm into the convolution before it, for a cheaper exact decomposition.

conv (W, b) followed by batch norm (eval) is one affine map: W' = s W, b' = s (b - mu) + beta with
s = gamma / sqrt(var + eps). The folded convolution's bias is exactly the constant that conv and batch norm
add together, so the RF decomposition of the folded copy is the same decomposition, at float precision, and
its backward pass skips every batch-norm backward (about a fifth of the cost for paper17).

Only pairs that follow each other inside an ``nn.Sequential`` are folded (paper17's layers, torchvision's
conv-norm-activation blocks); the batch norm is replaced by ``nn.Identity`` so module names stay valid.
"""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import nn


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """A folded deep copy of ``model`` (eval mode) and the number of pairs folded."""
    folded = copy.deepcopy(model)
    count = 0
    for seq in folded.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[a], seq._modules[b]
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(bn, nn.BatchNorm2d)
                and bn.track_running_stats
                and bn.running_mean is not None
                and conv.out_channels == bn.num_features
            ):
                seq._modules[a] = _fused(conv, bn)
                seq._modules[b] = nn.Identity()
                count += 1
    return folded.eval(), count


@torch.no_grad()
def _fused(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    mean, var = cast(torch.Tensor, bn.running_mean), cast(torch.Tensor, bn.running_var)
    s = torch.rsqrt(var + bn.eps)
    if bn.affine:
        s = s * bn.weight
    shift = -mean * s
    if bn.affine:
        shift = shift + bn.bias
    out = copy.deepcopy(conv)
    out.weight.copy_(conv.weight * s.reshape(-1, 1, 1, 1))
    bias = shift if conv.bias is None else conv.bias * s + shift
    out.bias = nn.Parameter(bias.to(conv.weight.dtype))
    return out


def folded_for_explanation(model: nn.Module) -> nn.Module:
    """The folded copy of ``model``, cached on it until its parameters or buffers change."""
    versions = tuple(t._version for t in (*model.parameters(), *model.buffers()))
    key = (versions, next(model.parameters()).dtype, next(model.parameters()).device)
    cached = getattr(model, "_retinaview_folded", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    folded, count = fold_batchnorm(model)
    result = folded if count else model
    setattr(model, "_retinaview_folded", (key, result))  # noqa: B010 (not a submodule)
    return result
