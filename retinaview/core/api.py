"""The Python API the CLI, the GUI engine and researchers call: load a model, explain an image."""

from __future__ import annotations

import time
from typing import Any

from torch import nn

from retinaview.core.common.result import Explanation
from retinaview.core.explain.methods import METHODS, run_method, to_input
from retinaview.core.model_loading import load_model

__all__ = ["METHODS", "explain", "load_model"]


def explain(model: nn.Module, image: Any, method: str = "rfscore", **params: Any) -> Explanation:
    """Explain one image with one method.

    ``image``: a path, a PIL image, an (H, W, 3) uint8 RGB array, or a `Preprocessed` from
    `retinaview.core.preprocess.preprocess`. The image goes through the model's preprocessing chain
    (``model.spec.preprocessing``) at the model's input size. ``params`` go to the method: every method takes
    ``classes``, ``on_partial`` (a callback that gets the explanation after each class, the predicted class
    first) and ``should_stop`` (checked between classes; `Cancelled` is raised when it returns True), see
    `retinaview.core.explain.methods`; ``rfscore`` also takes ``map_to_input_space``, ``sigma_factor``,
    ``batched`` and ``fold``. ``result.maps`` holds the method's map per class at model input resolution
    (``result.total`` for ``rfscore``); ``result.geometry.to_photo(map2d)`` puts one back onto the photograph.
    """
    from retinaview.core.preprocess import Preprocessed, preprocess

    t0 = time.perf_counter()
    spec = model.spec
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
