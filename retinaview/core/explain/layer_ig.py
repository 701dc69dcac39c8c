"""Layer and neuron integrated gradients: which channels of a layer carry a class, and where they look.

Following Sayres et al. 2019's use of IG on intermediate layers of Inception-v3 (Sundararajan et al. 2017):

1. Layer IG: the path runs in the layer's activation space, from the half-gray image's activations A' to the
   image's A; attr = (A - A') * integral of df_c/dA along it. Summed over positions it ranks the channels.
2. Neuron IG: for the top-k positive and top-k negative channels, IG of the channel's summed activation
   towards the pixels (half-gray baseline), all channels sharing each step's forward pass, which stops at the
   layer (nothing after it is needed).
3. The attribution-weighted sums of those pixel maps: sum over channels of attr_ch * map_ch, one for the
   positive and one for the negative channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.cam import find_module
from retinaview.core.explain.gradients import frozen_parameters
from retinaview.core.explain.ig import integrated_gradients, make_baseline, quadrature_rule


class _Stop(Exception):
    """Raised by a forward hook once the layer has run: the rest of the network is not needed."""


def _activation(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The module's output for input ``x``, running the network only up to it."""
    out: list[torch.Tensor] = []

    def grab(_m, _i, output):
        out.append(output)
        raise _Stop

    hook = module.register_forward_hook(grab)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        hook.remove()
    if len(out) != 1 or not isinstance(out[0], torch.Tensor):
        raise RetinaviewError("the layer does not output one tensor; choose another")
    return out[0]


class ChannelSums(nn.Module):
    """(N, 3, H, W) -> (N, T): the summed activation of the chosen channels of one layer of ``model``."""

    def __init__(self, model: nn.Module, module: nn.Module, channels: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.module = module
        self.channels = list(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = _activation(self.model, self.module, x)
        return a[:, self.channels].reshape(a.shape[0], len(self.channels), -1).sum(-1)


def layer_attributions(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    layer: str,
    target: int,
    *,
    steps: int = 32,
    quadrature: str = "gausslegendre",
    batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """(Ch, h, w) IG of class ``target`` at the layer's output, path in activation space.

    The layer must be one every path to the output passes through (a cut, like the explained layers):
    its output is replaced by the interpolated activations for a batch, the input staying one image.
    """
    module = find_module(model, layer)
    nodes, weights = quadrature_rule(quadrature, int(steps))
    with torch.no_grad(), frozen_parameters(model):
        a1 = _activation(model, module, x.detach())
        a0 = _activation(model, module, baseline.detach())
    if a1.dim() != 4:
        raise RetinaviewError(f"layer {layer!r} does not give a (1, C, h, w) map; choose another")
    delta = a1 - a0
    acc = torch.zeros_like(a1[0])
    path: list[torch.Tensor] = []

    def replace(_m, _i, _output):
        return path[0]

    hook = module.register_forward_hook(replace)
    try:
        for s in range(0, len(nodes), batch_size):
            a = torch.tensor(nodes[s : s + batch_size], dtype=x.dtype, device=x.device)
            w = torch.tensor(weights[s : s + batch_size], dtype=x.dtype, device=x.device)
            path[:] = [(a0 + a.reshape(-1, 1, 1, 1) * delta).requires_grad_(True)]
            with frozen_parameters(model), torch.enable_grad():
                try:
                    out = model(x.detach())
                except RuntimeError as exc:
                    raise RetinaviewError(
                        f"layer {layer!r} is not a layer every path passes through "
                        f"(choices: {', '.join(model.spec.explained_layers)})"
                    ) from exc
                (g,) = torch.autograd.grad((out[:, target] * w).sum(), path[0])
            acc += g.sum(0)
            if on_progress is not None:
                on_progress(min(s + batch_size, len(nodes)), len(nodes))
    finally:
        hook.remove()
    return delta[0] * acc


@dataclass
class LayerIGResult:
    """``channel_attr``: (Ch,) attribution of each channel towards ``target`` (sums to about f_c(x) - f_c(x'));
    ``ranked``: channel indices, most positive first; ``positive`` / ``negative``: the top-k channels each
    side; ``channel_maps``: (2k, H, W) pixel IG of each of those channels' summed activation (positive ones
    first); ``positive_map`` / ``negative_map``: (H, W) sums of attr_ch * map_ch over each side;
    ``completeness``: the layer IG's completeness error."""

    layer: str
    target: int
    logits: np.ndarray
    channel_attr: np.ndarray
    ranked: list[int]
    positive: list[int]
    negative: list[int]
    channel_maps: np.ndarray
    positive_map: np.ndarray
    negative_map: np.ndarray
    completeness: float


def layer_ig(
    model: nn.Module,
    x: torch.Tensor,
    layer: str | None = None,
    target: int | None = None,
    *,
    top_k: int = 3,
    steps: int = 32,
    quadrature: str = "gausslegendre",
    on_progress: Callable[[int, int], None] | None = None,
) -> LayerIGResult:
    """Layer IG towards ``target`` (default: the predicted class), then neuron IG of its top channels.

    ``layer``: a module name (default: the model's middle explained layer). Baselines are half-gray.
    """
    spec = model.spec
    name = layer or spec.explained_layers[len(spec.explained_layers) // 2]
    if top_k < 1:
        raise RetinaviewError(f"top_k={top_k} out of range (at least 1)")
    baseline = make_baseline(model, x, "halfgray")
    with torch.no_grad(), frozen_parameters(model):
        ends = model(torch.cat([x.detach(), baseline])).double()
    logits = ends[0].cpu().numpy()
    c = int(np.argmax(logits)) if target is None else int(target)
    if not 0 <= c < len(logits):
        raise RetinaviewError(f"target={c} out of range (choices: 0-{len(logits) - 1})")
    attr = layer_attributions(
        model, x, baseline, name, c, steps=steps, quadrature=quadrature, on_progress=on_progress
    )
    per_channel = attr.reshape(attr.shape[0], -1).sum(1).double().cpu().numpy()
    delta = float(ends[0, c] - ends[1, c])
    completeness = abs(per_channel.sum() - delta) / max(abs(delta), np.finfo(float).tiny)
    ranked = [int(i) for i in np.argsort(-per_channel, kind="stable")]
    k = min(top_k, len(ranked))
    positive = [i for i in ranked[:k] if per_channel[i] > 0]
    negative = [i for i in reversed(ranked[-k:]) if per_channel[i] < 0]
    chosen = positive + negative
    size = tuple(x.shape[-2:])
    maps = np.zeros((len(chosen), *size))
    if chosen:
        module = find_module(model, name)
        res = integrated_gradients(
            ChannelSums(model, module, chosen),
            x,
            baseline,
            classes=list(range(len(chosen))),
            steps=steps,
            quadrature=quadrature,
            preview_steps=0,
        )
        maps = res.maps().astype(np.float64)
    weights = per_channel[chosen]
    npos = len(positive)
    return LayerIGResult(
        layer=name,
        target=c,
        logits=logits,
        channel_attr=per_channel,
        ranked=ranked,
        positive=positive,
        negative=negative,
        channel_maps=maps,
        positive_map=np.tensordot(weights[:npos], maps[:npos], axes=1),
        negative_map=np.tensordot(weights[npos:], maps[npos:], axes=1),
        completeness=float(completeness),
    )
