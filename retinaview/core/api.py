"""The Python API the CLI, the GUI engine and researchers call: load a model, explain an image."""

from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np
import torch
from torch import nn

import retinaview.core.explain.registered  # noqa: F401  (registers the methods beside rfscore)
from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.result import Explanation
from retinaview.core.explain.methods import METHODS, run_method
from retinaview.core.model_loading import load_model
from retinaview.core.models.inputs import to_input
from retinaview.core.models.registry import spec_of

__all__ = ["METHODS", "check_params", "explain", "load_model", "method_params", "predict"]

# Parameters every method takes from its caller rather than from a user.
CONTRACT_PARAMS = ("on_partial", "should_stop", "on_progress")


def method_params(name: str) -> dict[str, Any]:
    """The keyword parameters of method ``name`` a user may set, with their defaults.

    Raises
    ------
    RetinaviewError
        For an unknown method, naming the known ones.
    """
    if name not in METHODS:
        raise RetinaviewError(
            f"unknown explanation method {name!r} (choices: {', '.join(sorted(METHODS))})"
        )
    sig = inspect.signature(METHODS[name])
    return {
        p.name: p.default
        for p in list(sig.parameters.values())[2:]
        if p.kind is p.KEYWORD_ONLY and p.name not in CONTRACT_PARAMS
    }


def check_params(name: str, params: dict[str, Any]) -> None:
    """Raise a one-line `RetinaviewError` for an unknown method or a parameter it does not take."""
    known = method_params(name)
    for key, value in params.items():
        if key in CONTRACT_PARAMS:
            continue
        if key not in known:
            raise RetinaviewError(
                f"unknown parameter {key!r} for method {name} (choices: {', '.join(known)})"
            )
        default = known[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and (isinstance(default, float) or float(value).is_integer())
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = True
        if not ok:
            raise RetinaviewError(
                f"parameter {key}={value!r} of method {name} should be of type {type(default).__name__} "
                f"(default {default!r})"
            )


def explain(model: nn.Module, image: Any, method: str = "rfscore", **params: Any) -> Explanation:
    """Explain one image with one method.

    ``image``: a path, a PIL image, an (H, W, 3) uint8 RGB array, or a `Preprocessed` from
    `retinaview.core.preprocess.preprocess`. The image goes through the model's preprocessing chain
    (``model.spec.preprocessing``) at the model's input size. ``params`` go to the method: every method takes
    ``classes``, ``on_partial`` (a callback that gets the explanation after each class, the predicted class
    first) and ``should_stop`` (checked between classes; `Cancelled` is raised when it returns True), see
    `retinaview.core.explain.methods`; ``rfscore`` also takes ``map_to_input_space``, ``sigma_factor``,
    ``batched`` and ``fold``; `method_params` lists any method's own (saliency, gradxinput, ig, layer_ig,
    ig_counterfactual, cam, gradcam, contrast; see `retinaview.core.explain.registered`). An unknown method or
    parameter raises a one-line `RetinaviewError` naming the choices. ``result.maps`` holds the method's map per class at model input resolution
    (``result.total`` for ``rfscore``); ``result.geometry.to_photo(map2d)`` puts one back onto the photograph.
    """
    from retinaview.core.preprocess import Preprocessed, preprocess

    check_params(method, params)
    t0 = time.perf_counter()
    spec = spec_of(model)
    pre = (
        image
        if isinstance(image, Preprocessed)
        else preprocess(image, spec.preprocessing, spec.input_size)
    )

    def finish(result: Explanation) -> Explanation:
        result.fov = pre.fov
        result.display = pre.display
        result.geometry = pre.geometry
        result.seconds = time.perf_counter() - t0
        return result

    on_partial = params.pop("on_partial", None)
    if on_partial is not None:
        params["on_partial"] = lambda partial: on_partial(finish(partial))
    return finish(run_method(method, model, to_input(model, pre.image), **params))


def predict(model: nn.Module, image: Any) -> np.ndarray:
    """Class probabilities of one photograph: the model's preprocessing chain, one forward pass.

    Parameters
    ----------
    model : torch.nn.Module
        A grading model from `load_model`.
    image : path, PIL image, numpy.ndarray or Preprocessed
        As in `explain`.

    Returns
    -------
    numpy.ndarray
        (C,) float64 softmax probabilities.
    """
    from retinaview.core.preprocess import Preprocessed, preprocess

    spec = spec_of(model)
    pre = (
        image
        if isinstance(image, Preprocessed)
        else preprocess(image, spec.preprocessing, spec.input_size)
    )
    with torch.no_grad():
        logits = model(to_input(model, pre.image))
    return torch.softmax(logits.double(), dim=-1)[0].cpu().numpy()
