"""Model parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"), cascading from the
top: re-initialise the classifier, then the last explained layer as well, and so on down to the first, and
after each step compare the method's map with the map of the trained model. A map that stays the same
although the weights it should explain are gone does not explain the model. The figure is Spearman's rank
correlation of |map| inside the field of view: near 1 = the map ignores the weights, near 0 = it depends on
them.

What the test does not show (Binder et al. 2023, "Shortcomings of top-down randomization-based sanity checks
for evaluations of deep neural network explanations"): randomising the top layers leaves the bottom layers'
features intact, so a map can stay similar for good reasons (it follows the image's strong edges, which any
network's early layers respond to), and a low similarity does not make a map faithful (noise on the random
model's output passes the test best). Read the curve as a necessary check, never as a ranking of methods.

The model itself is never changed: the randomisation runs on a deep copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.models.registry import spec_of


@dataclass
class RandomisationStep:
    """After re-initialising every block from the top down to ``layer``: Spearman's rho of |map| with the
    trained model's |map| inside the field of view."""

    layer: str
    spearman: float


def cascade_layers(model: nn.Module) -> list[str]:
    """The blocks re-initialised, top first: the classifier, then the explained layers from the last."""
    spec = spec_of(model)
    names = [*spec.explained_layers[::-1]]
    if spec.classifier:
        names.insert(0, spec.classifier)
    return names


def reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    """Fresh random weights for every parameter of ``module`` (Kaiming-normal scale per output unit for
    weights of two or more dimensions, normal 0.1 for the rest) and fresh batch-norm statistics."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
            for p in m.parameters(recurse=False):
                if p.dim() >= 2:
                    fan_in = p[0].numel()
                    std = (2.0 / fan_in) ** 0.5
                else:
                    std = 0.1
                noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
                p.copy_((noise * std).to(p.dtype))


def _abs_in_fov(result, target: int, fov: np.ndarray) -> np.ndarray:
    return np.abs(result.maps[target][fov])


def parameter_randomisation(
    model: nn.Module,
    image: Any,
    method: str,
    target: int | None = None,
    *,
    params: dict[str, Any] | None = None,
    layers: list[str] | None = None,
    seed: int = 0,
) -> list[RandomisationStep]:
    """Cascading model parameter randomisation of one method on one image.

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier (left unchanged).
    image : path, array or Preprocessed
        As `retinaview.core.api.explain` takes it.
    method : str
        A registered explanation method.
    target : int, optional
        The class explained (default: the trained model's predicted class).
    params : dict, optional
        The method's own parameters.
    layers : list of str, optional
        The blocks re-initialised, top first (default `cascade_layers`).
    seed : int
        Seed of the random weights.

    Returns
    -------
    list of RandomisationStep
        One per block, in the order randomised.
    """
    from retinaview.core.api import explain
    from retinaview.core.preprocess import Preprocessed, preprocess

    params = dict(params or {})
    spec = spec_of(model)
    pre = (
        image
        if isinstance(image, Preprocessed)
        else preprocess(image, spec.preprocessing, spec.input_size)
    )
    first = explain(
        model, pre, method=method, classes="predicted" if target is None else [target], **params
    )
    target = first.grade if target is None else target
    fov = np.asarray(pre.fov, bool)
    original = _abs_in_fov(first, target, fov)
    work = copy.deepcopy(model)
    for attr in ("_retinaview_folded", "_retinaview_activation_bytes"):
        work.__dict__.pop(attr, None)
    modules = dict(work.named_modules())
    generator = torch.Generator().manual_seed(seed)
    steps = []
    for name in layers or cascade_layers(model):
        if name not in modules:
            raise RetinaviewError(f"the model has no layer {name!r} to randomise")
        reinitialise(modules[name], generator)
        result = explain(work, pre, method=method, classes=[target], **params)
        rho = spearmanr(original, _abs_in_fov(result, target, fov)).statistic
        steps.append(RandomisationStep(name, float(rho)))
    return steps
