"""Explanation methods by name: each turns (model, preprocessed input) into an `Explanation`.

The contract a method follows
-----------------------------
A method is a function registered under its name with ``@method("name")``::

    @method("saliency")
    def explain_saliency(
        model: nn.Module,
        x: torch.Tensor,
        *,
        classes: Sequence[int] | str | None = None,
        on_partial: Callable[[Explanation], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        **own_params,
    ) -> Explanation: ...

- ``model``: an eval-mode module with a ``spec`` (`retinaview.core.models.registry.ModelSpec`); ``x``: one
  normalised input, (1, 3, H, W), on the model's device and dtype (`to_input`, re-exported here from
  `retinaview.core.models.inputs`, the one input normalisation). The method must leave the
  model as it found it (no hooks left behind, no module settings changed).
- ``classes``: which classes to explain and in which order (`class_order`: None = all, the predicted class
  first; ``"predicted"`` = that class alone; or a sequence of class indices).
- ``on_partial``: when given, called with an `Explanation` after each class (or each step) but the last, with
  the classes done so far in ``classes`` and NaN rows for the rest, so a viewer shows the predicted class
  while the others are computed. The final result is the return value, never passed to ``on_partial``.
- ``should_stop``: when given, a method checks it between classes or steps (integrated gradients: between
  batches of steps), never after the last, and raises `retinaview.core.common.errors.Cancelled` (via
  `stop_if`) when it returns True. Exceptions from either callback propagate.
- Returns an `Explanation` with ``method`` set to its own name, ``maps`` (C, H, W) at the input's resolution
  (NaN rows for classes not asked for), ``map_kind`` (``"map"`` unless the method has several kinds),
  ``check_name`` and ``check`` (its own check as a relative error, e.g. ``"completeness error"``), and
  ``params`` (its parameters, JSON-serialisable). `assemble` builds one from per-class rows.
- Keyword parameters beyond these are the method's own; they come from the caller (``retinaview explain``,
  the engine's request) and are part of the engine's cache key.

`run_method` times a method and checks the name; `retinaview.core.api.explain` runs the model's preprocessing
first and fills in the field of view, display image and geometry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import Cancelled, RetinaviewError
from retinaview.core.common.gaussian_rf import DEFAULT_SIGMA_FACTOR, map_to_input, spread_constant
from retinaview.core.common.result import Explanation, LayerRecord, class_order
from retinaview.core.explain.fold import folded_for_explanation
from retinaview.core.explain.receptive_field import LayerRF, receptive_fields
from retinaview.core.explain.rfscore import Decomposition, iter_decompose, merge
from retinaview.core.models.inputs import to_input
from retinaview.core.models.registry import spec_of

__all__ = [
    "METHODS",
    "Method",
    "assemble",
    "class_order",
    "method",
    "run_method",
    "to_input",
]

Method = Callable[..., Explanation]
METHODS: dict[str, Method] = {}

PartialCallback = Callable[[Explanation], None]
StopCheck = Callable[[], bool]


def method(name: str) -> Callable[[Method], Method]:
    """Register an explanation method under ``name`` (see the module docstring for its contract).

    Parameters
    ----------
    name : str
        The name requests and ``retinaview explain`` use.

    Returns
    -------
    callable
        A decorator that registers the function and returns it unchanged.
    """

    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's parameters."""
    return next(model.parameters()).dtype


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def layer_rfs(model: nn.Module) -> list[LayerRF]:
    """Receptive fields of the model's explained layers, traced once per model and kept on it."""
    cached = getattr(model, "_retinaview_rfs", None)
    if cached is None:
        spec = spec_of(model)
        cached = receptive_fields(model, spec.explained_layers, spec.input_size)
        setattr(model, "_retinaview_rfs", cached)  # noqa: B010 (not a submodule)
    return cached


def expand_rows(
    rows: torch.Tensor | np.ndarray, order: Sequence[int], n_classes: int
) -> np.ndarray:
    """Rows for the computed classes -> an array with one row per class (NaN where not computed).

    Parameters
    ----------
    rows : torch.Tensor or numpy.ndarray
        (len(order), ...) one row per computed class, in the order of ``order``.
    order : sequence of int
        The class of each row.
    n_classes : int
        How many classes the model has.

    Returns
    -------
    numpy.ndarray
        (n_classes, ...) float64 for float64 rows, else float32.
    """
    if isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    out = np.full(
        (n_classes, *rows.shape[1:]),
        np.nan,
        dtype=np.float64 if rows.dtype == np.float64 else np.float32,
    )
    out[list(order)] = rows
    return out


def assemble(
    model: nn.Module,
    name: str,
    logits: torch.Tensor,
    rows: torch.Tensor | np.ndarray,
    order: Sequence[int],
    *,
    check_name: str = "",
    check: float = float("nan"),
    params: dict[str, Any] | None = None,
    map_kind: str = "map",
) -> Explanation:
    """An `Explanation` of a method with one map per class, from the rows of the classes computed so far.

    Parameters
    ----------
    model : torch.nn.Module
        The explained model (for its class names).
    name : str
        The method's registered name.
    logits : torch.Tensor
        (C,) or (1, C) the model's output for the input.
    rows : torch.Tensor or numpy.ndarray
        (len(order), H, W) one map per computed class.
    order : sequence of int
        The classes of ``rows``, in the order computed (a partial result has fewer than C).
    check_name, check : str, float
        The method's own check and its value (relative error).
    params : dict, optional
        The method's parameters, recorded with the result.
    map_kind : str
        The name of the map kind.

    Returns
    -------
    Explanation
        Field of view all True, no display or geometry (`retinaview.core.api.explain` fills them in).
    """
    logits = logits.detach().reshape(-1).cpu()
    n = logits.shape[0]
    maps = expand_rows(rows, order, n)
    return Explanation(
        method=name,
        logits=logits.numpy(),
        probs=torch.softmax(logits.double(), 0).numpy(),
        maps=maps,
        fov=np.ones(maps.shape[-2:], dtype=bool),
        map_kind=map_kind,
        check_name=check_name,
        check=float(check),
        classes=tuple(int(c) for c in order),
        class_names=tuple(spec_of(model).class_names),
        params={**(params or {}), "classes": [int(c) for c in order]},
    )


def stop_if(should_stop: StopCheck | None) -> None:
    """Raise `Cancelled` when ``should_stop`` says the result is no longer wanted (methods call this between
    classes or steps)."""
    if should_stop is not None and should_stop():
        raise Cancelled("explanation no longer wanted")


RFSCORE = "rfscore"
CONSERVATION = "conservation residual"


@method(RFSCORE)
def explain_rfscore(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    map_to_input_space: bool = True,
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
    batched: bool | None = None,
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
    fold: bool = True,
) -> Explanation:
    """Exact RF score propagation (de la Torre, Valls and Puig, arXiv:1712.08107).

    Parameters
    ----------
    model, x, classes, on_partial, should_stop
        As in the method contract (module docstring).
    map_to_input_space : bool
        Map every layer's constant part to input space with the Gaussian prior and add it up into the
        ``total`` map (the method's map); False: the input-dependent map only (``map_kind == "input"``).
    sigma_factor : float
        The Gaussian prior's sigma as a fraction of the receptive field.
    batched : bool, optional
        One batched backward over the classes (default on CUDA) instead of one per class.
    fold : bool
        Decompose a copy with batch norm folded into the convolutions (the same function and the same
        decomposition, at float precision, for less work).

    Returns
    -------
    Explanation
        Map kinds ``total`` (input + every S_k mapped + bias; ``total[c].sum() == logits[c]``), ``input``
        and ``constant`` (total - input); hidden-space layer maps; ``check``: the conservation residual.
    """
    spec = spec_of(model)
    rfs = layer_rfs(model)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    parts: list[Decomposition] = []
    totals: list[torch.Tensor] = []
    net = folded_for_explanation(model) if fold else model
    head = dict(net.named_modules()).get(spec.classifier)
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
        done = sum(len(p.order) for p in parts)
        if done < len(class_order(int(part.logits.argmax()), len(part.logits), classes)):
            if on_partial is not None:
                on_partial(_assemble(model, head, merge(parts), totals, rfs, sigma_factor))
            stop_if(should_stop)
    return _assemble(model, head, merge(parts), totals, rfs, sigma_factor)


def _assemble(
    model: nn.Module,
    head: nn.Module | None,
    dec: Decomposition,
    totals: list[torch.Tensor],
    rfs: list[LayerRF],
    sigma_factor: float,
) -> Explanation:
    """The `Explanation` of the classes decomposed so far."""
    n = spec_of(model).num_classes
    layers = [
        LayerRecord(
            name=layer.name,
            si=expand_rows(layer.si, dec.order, n),
            sk=expand_rows(layer.sk, dec.order, n),
            rf=rf.rf,
            jump=rf.jump,
            offset=rf.offset,
            shape=rf.shape,
        )
        for layer, rf in zip(dec.layers, rfs, strict=True)
    ]
    inp = expand_rows(dec.input, dec.order, n)
    features = None if dec.features is None else expand_rows(dec.features, dec.order, n)
    if totals:
        maps, kind = expand_rows(torch.cat(totals), dec.order, n), "total"
        extra, differences = {"input": inp}, {"constant": ("total", "input")}
    else:
        maps, kind, extra, differences = inp, "input", {}, {}
    ex = Explanation(
        method=RFSCORE,
        logits=dec.logits.numpy(),
        probs=torch.softmax(dec.logits.double(), 0).numpy(),
        maps=maps,
        fov=np.ones(maps.shape[-2:], dtype=bool),
        map_kind=kind,
        extra_maps=extra,
        differences=differences,
        check_name=CONSERVATION,
        classes=tuple(dec.order),
        bias=expand_rows(dec.bias, dec.order, n),
        layers=layers,
        features=features,
        feature_maps=feature_maps(head, dec.activation, features),
        class_names=tuple(spec_of(model).class_names),
        params={"sigma_factor": sigma_factor, "classes": list(dec.order)},
    )
    ex.check = ex.residual()
    return ex


def feature_maps(
    head: nn.Module | None, activation: torch.Tensor | None, features: np.ndarray | None
) -> np.ndarray | None:
    """Where each classifier feature's score sits on the last explained layer's grid.

    Exact when the classifier is a linear layer reading the global average of that layer (paper17's 4x4
    average pool, ResNet's adaptive pool): feature j of class c is ``w_cj * mean(a_j)``, so
    ``w_cj * a_j / (h * w)`` spreads it over the grid and sums to it. Checked against the decomposition's
    feature scores, not assumed.

    Parameters
    ----------
    head : torch.nn.Module or None
        The classifier module of the model that ran (the folded copy's: same weights).
    activation : torch.Tensor or None
        (F, h, w) the last explained layer's activation from the same forward pass.
    features : numpy.ndarray or None
        (C, F) the decomposition's feature scores ``w_cj * f_j`` (NaN rows: classes not computed).

    Returns
    -------
    numpy.ndarray or None
        (C, F, h, w) float32, NaN rows where ``features`` is NaN; None for any other head.
    """
    if features is None or activation is None or activation.dim() != 3:
        return None
    if not isinstance(head, nn.Linear) or activation.shape[0] != head.in_features:
        return None
    a = activation.double()
    w = head.weight.detach().double().cpu()
    maps = (w[:, :, None, None] * a[None] / (a.shape[1] * a.shape[2])).numpy()
    done = np.isfinite(features).all(1)
    if not done.any():
        return None
    sums = maps[done].sum((2, 3))
    scale = float(np.abs(features[done]).max())
    if not np.allclose(sums, features[done], rtol=1e-4, atol=1e-6 * scale):
        return None
    maps[~done] = np.nan
    return maps.astype(np.float32)


def run_method(name: str, model: nn.Module, x: torch.Tensor, **params: Any) -> Explanation:
    """Run the method registered as ``name`` and time it.

    Parameters
    ----------
    name : str
        A key of `METHODS`.
    model, x
        As in the method contract.
    **params
        The method's keyword parameters (``classes``, ``on_partial``, ``should_stop``, its own).

    Returns
    -------
    Explanation

    Raises
    ------
    RetinaviewError
        For an unknown method name.
    Cancelled
        When ``should_stop`` asked the method to give up.
    """
    try:
        fn = METHODS[name]
    except KeyError:
        raise RetinaviewError(
            f"unknown explanation method {name!r} (known: {', '.join(sorted(METHODS))})"
        ) from None
    # The callbacks are optional for the caller: None is not passed, so a method need not name them.
    for name in ("on_partial", "should_stop"):
        if name in params and params[name] is None:
            del params[name]
    t0 = time.perf_counter()
    result = fn(model, x, **params)
    result.seconds = time.perf_counter() - t0
    return result
