"""Class activation maps (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017).

CAM needs a network that ends in global average pooling + one linear layer: f_c = b_c + sum_k w_ck mean(A_k),
so CAM_c = sum_k w_ck A_k satisfies mean(CAM_c) + b_c = f_c exactly, from one forward pass without a graph.
Grad-CAM works at any layer: alpha_ck = mean over positions of df_c/dA_k, map = ReLU(sum_k alpha_ck A_k). Its
graph starts at that layer (nothing before it needs a gradient), so every class costs one backward through the
layers after it only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.gradients import class_order, frozen_parameters


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(K, h, w) -> (K, H, W) by bilinear interpolation (the usual way CAMs are drawn over the image)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps.cpu().numpy()
    up = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)
    return up[:, 0].cpu().numpy()


def find_module(model: nn.Module, name: str) -> nn.Module:
    """The module called ``name``, or a one-line error naming it and the model's explained layers."""
    module = dict(model.named_modules()).get(name) if name else None
    if module is None:
        spec = getattr(model, "spec", None)
        layers = ", ".join(spec.explained_layers) if spec is not None else ""
        raise RetinaviewError(
            f"unknown layer {name!r} (choices: {layers}; or any module name that "
            "`retinaview layers` lists)"
        )
    return module


@dataclass
class CAMResult:
    """``hidden``: (K, h, w) maps on the layer's grid; ``maps``: (K, H, W) upsampled to the input;
    ``logits``: (C,); ``order``: classes of the maps; ``residual``: (K,) mean(CAM_c) + b_c - f_c (CAM only);
    ``layer``: where the maps were taken."""

    logits: np.ndarray
    order: list[int]
    hidden: np.ndarray
    maps: np.ndarray
    layer: str
    residual: np.ndarray | None = None


def _pooled_feature_map(model: nn.Module, x: torch.Tensor, head: nn.Linear):
    """Logits, the 4-D map whose spatial mean is the linear head's input and the module giving it (or Nones).

    The candidate is the last module output with more than one position before the head runs; a later
    in-place ReLU (DenseNet's functional one) may change it, which the check below allows for.
    """
    last: list[tuple[str, torch.Tensor]] = []
    head_in: list[torch.Tensor] = []
    names = {m: n for n, m in model.named_modules()}

    def record(module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-2:].numel() > 1:
            last[:] = [(names[module], output)]

    hooks = [m.register_forward_hook(record) for m in model.modules() if m is not head]
    hooks.append(head.register_forward_hook(lambda _m, i, _o: head_in.append(i[0])))
    try:
        with torch.no_grad():
            logits = model(x).reshape(-1)
    finally:
        for h in hooks:
            h.remove()
    if len(head_in) != 1 or head_in[0].dim() != 2 or not last:
        return logits, None, None
    pooled = head_in[0][0]
    name, a = last[0]
    if a.shape[1] != pooled.shape[0]:
        return logits, None, None
    tol = 1e-10 if a.dtype == torch.float64 else 1e-5 * float(1 + pooled.abs().max())
    for cand in (a, F.relu(a)):
        if torch.allclose(cand[0].mean((1, 2)), pooled, rtol=0, atol=tol):
            return logits, cand[0], name
    return logits, None, None


def cam(model: nn.Module, x: torch.Tensor, classes: Sequence[int] | str | None = None) -> CAMResult:
    """Class activation maps of a network ending in global average pooling and a linear layer.

    Raises a `RetinaviewError` naming the architecture for any other head (for example Inception-v3 with
    fully connected layers after the pooling).
    """
    spec = model.spec
    head = dict(model.named_modules()).get(spec.classifier)
    arch = spec.arch
    if not isinstance(head, nn.Linear):
        raise RetinaviewError(
            f"cam needs a model that ends in global average pooling + one linear layer; {arch} does not "
            "(choices: paper17, resnet18, densenet121; use gradcam for others)"
        )
    with frozen_parameters(model):
        logits, fmap, layer = _pooled_feature_map(model, x.detach(), head)
    if fmap is None:
        raise RetinaviewError(
            f"cam needs a model that ends in global average pooling + one linear layer; {arch} does not "
            "(choices: paper17, resnet18, densenet121; use gradcam for others)"
        )
    order = class_order(logits, classes)
    w = head.weight.detach()[order]
    b = head.bias.detach()[order] if head.bias is not None else torch.zeros(len(order))
    hidden = torch.einsum("ck,khw->chw", w, fmap)
    residual = hidden.mean((1, 2)) + b - logits[order]
    return CAMResult(
        logits=logits.double().cpu().numpy(),
        order=order,
        hidden=hidden.cpu().numpy(),
        maps=upsample(hidden, tuple(x.shape[-2:])),
        layer=layer,
        residual=residual.double().cpu().numpy(),
    )


def gradcam(
    model: nn.Module,
    x: torch.Tensor,
    layer: str | None = None,
    classes: Sequence[int] | str | None = None,
    relu: bool = True,
) -> CAMResult:
    """Grad-CAM at the module named ``layer`` (default: the last explained layer).

    ``relu=False`` keeps the signed map sum_k alpha_ck A_k (evidence against the class shows as negative).
    """
    name = layer or model.spec.explained_layers[-1]
    module = find_module(model, name)
    acts: list[torch.Tensor] = []

    def leaf(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise RetinaviewError(f"layer {name!r} does not output one tensor; choose another")
        # The graph starts here: the layers before it run without autograd bookkeeping.
        a = output.detach().clone().requires_grad_(True)
        acts.append(a)
        return a

    hook = module.register_forward_hook(leaf)
    try:
        with frozen_parameters(model), torch.enable_grad():
            logits = model(x.detach()).reshape(-1)
    finally:
        hook.remove()
    if len(acts) != 1 or acts[0].dim() != 4:
        raise RetinaviewError(
            f"layer {name!r} must run once per forward pass and give a (1, C, h, w) map; choose another"
        )
    a = acts[0]
    order = class_order(logits, classes)
    maps = []
    for j, c in enumerate(order):
        (g,) = torch.autograd.grad(logits[c], a, retain_graph=j < len(order) - 1, allow_unused=True)
        if g is None:
            g = torch.zeros_like(a)
        alpha = g[0].mean((1, 2))
        maps.append(torch.einsum("k,khw->hw", alpha, a[0].detach()))
    hidden = torch.stack(maps)
    if relu:
        hidden = hidden.clamp_min(0)
    return CAMResult(
        logits=logits.detach().double().cpu().numpy(),
        order=order,
        hidden=hidden.cpu().numpy(),
        maps=upsample(hidden, tuple(x.shape[-2:])),
        layer=name,
    )
