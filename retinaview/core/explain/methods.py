"""Explanation methods by name: each turns (model, preprocessed image) into an `Explanation`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.gaussian_rf import DEFAULT_SIGMA_FACTOR, map_to_input, spread_constant
from retinaview.core.common.result import Explanation, LayerRecord
from retinaview.core.explain.fold import folded_for_explanation
from retinaview.core.explain.receptive_field import LayerRF, receptive_fields
from retinaview.core.explain.rfscore import Decomposition, iter_decompose, merge

Method = Callable[..., Explanation]
METHODS: dict[str, Method] = {}


def method(name: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


def model_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def to_input(model: nn.Module, image01: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float image in [0, 1] -> normalised (1, 3, H, W) tensor on the model's device and dtype."""
    spec = model.spec
    x = torch.from_numpy(np.ascontiguousarray(image01.transpose(2, 0, 1))).unsqueeze(0)
    x = x.to(device=model_device(model), dtype=model_dtype(model))
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return (x - mean) / std


def layer_rfs(model: nn.Module) -> list[LayerRF]:
    """Receptive fields of the model's explained layers, traced once per model and kept on it."""
    cached = getattr(model, "_retinaview_rfs", None)
    if cached is None:
        spec = model.spec
        cached = receptive_fields(model, spec.explained_layers, spec.input_size)
        model._retinaview_rfs = cached
    return cached


def _expand(rows: torch.Tensor, order: Sequence[int], n_classes: int) -> np.ndarray:
    """Rows for the computed classes -> an array with one row per class (NaN where not computed)."""
    out = np.full(
        (n_classes, *rows.shape[1:]),
        np.nan,
        dtype=np.float64 if rows.dtype == torch.float64 else np.float32,
    )
    out[list(order)] = rows.numpy()
    return out


@method("rfscore")
def explain_rfscore(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    map_to_input_space: bool = True,
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
    batched: bool | None = None,
    on_partial: Callable[[Explanation], None] | None = None,
    fold: bool = True,
) -> Explanation:
    """Exact RF score propagation, hidden-space layer maps, and the total map in input space.

    ``fold``: decompose a copy with batch norm folded into the convolutions before it (the same function and
    the same decomposition, at float precision, for less work).

    ``on_partial`` receives an `Explanation` after each class (the predicted class first; the classes not
    done yet are NaN), so a viewer can show the predicted class while the others are computed.
    """
    spec = model.spec
    rfs = layer_rfs(model)
    size = tuple(x.shape[-2:])
    parts: list[Decomposition] = []
    totals: list[torch.Tensor] = []
    net = folded_for_explanation(model) if fold else model
    for part in iter_decompose(net, x, spec.explained_layers, spec.classifier, classes, batched):
        parts.append(part)
        if map_to_input_space:
            total = part.input.clone()
            for layer, rf in zip(part.layers, rfs, strict=True):
                total += map_to_input(
                    layer.sk,
                    (rf.y.size, rf.x.size),
                    (rf.y.jump, rf.x.jump),
                    rf.offset,
                    size,
                    sigma_factor,
                )
            totals.append(total + spread_constant(part.bias, size, sigma_factor))
        if on_partial is not None:
            on_partial(_assemble(model, merge(parts), totals, rfs, size, sigma_factor))
    return _assemble(model, merge(parts), totals, rfs, size, sigma_factor)


def _assemble(model, dec: Decomposition, totals, rfs, size, sigma_factor) -> Explanation:
    spec = model.spec
    n = spec.num_classes
    layers = [
        LayerRecord(
            name=layer.name,
            si=_expand(layer.si, dec.order, n),
            sk=_expand(layer.sk, dec.order, n),
            rf=rf.rf,
            jump=rf.jump,
            offset=rf.offset,
            shape=rf.shape,
        )
        for layer, rf in zip(dec.layers, rfs, strict=True)
    ]
    return Explanation(
        method="rfscore",
        logits=dec.logits.numpy(),
        probs=torch.softmax(dec.logits.double(), 0).numpy(),
        bias=_expand(dec.bias, dec.order, n),
        input=_expand(dec.input, dec.order, n),
        total=_expand(torch.cat(totals), dec.order, n) if totals else None,
        fov=np.ones(size, dtype=bool),
        layers=layers,
        features=None if dec.features is None else _expand(dec.features, dec.order, n),
        class_names=spec.class_names,
        params={"sigma_factor": sigma_factor, "classes": list(dec.order)},
    )


def run_method(name: str, model: nn.Module, x: torch.Tensor, **params: Any) -> Explanation:
    try:
        fn = METHODS[name]
    except KeyError:
        raise RetinaviewError(
            f"unknown explanation method {name!r} (known: {', '.join(sorted(METHODS))})"
        ) from None
    t0 = time.perf_counter()
    result = fn(model, x, **params)
    result.seconds = time.perf_counter() - t0
    return result
