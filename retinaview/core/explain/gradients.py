"""Input gradients of the class scores: saliency (Simonyan et al. 2013) and gradient x input.

Every class shares one forward pass; each class then costs one input-gradient backward over the retained
graph, with no parameter gradients (they would double the cost of each convolution's backward).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.result import class_order as _class_order


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring gradients inside the block: backward passes compute input gradients only."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def class_order(logits: torch.Tensor, classes: Sequence[int] | str | None) -> list[int]:
    """The classes to explain, the predicted one first (see `retinaview.core.common.result.class_order`).

    ``classes``: None or ``"all"`` (all), ``"predicted"``, or a list of class indices (kept in the given
    order). Raises a `RetinaviewError` naming the choices for anything else.
    """
    n = int(logits.shape[-1])
    predicted = int(logits.reshape(-1, n)[0].argmax())
    try:
        return _class_order(predicted, n, None if classes == "all" else classes)
    except ValueError as exc:
        raise RetinaviewError(f"{exc} (choices: all, predicted, or indices 0-{n - 1})") from None


def iter_input_gradients(
    model: nn.Module, x: torch.Tensor, classes: Sequence[int] | str | None = None
) -> Iterator[tuple[torch.Tensor, list[int], torch.Tensor]]:
    """d f_c / d x class by class, from one forward pass.

    Parameters
    ----------
    model : nn.Module
        A classifier in eval mode returning (1, C) logits.
    x : torch.Tensor
        (1, 3, H, W) normalised input.
    classes : sequence of int, "predicted", "all" or None
        Which classes; the predicted class comes first unless indices are given.

    Yields
    ------
    logits : torch.Tensor
        (C,) class scores before softmax.
    order : list of int
        The classes to compute, in order.
    grad : torch.Tensor
        (3, H, W) input gradient of the next class of ``order``.
    """
    with frozen_parameters(model), torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        logits = model(xi).reshape(-1)
        order = class_order(logits, classes)
        for j, c in enumerate(order):
            (g,) = torch.autograd.grad(logits[c], xi, retain_graph=j < len(order) - 1)
            yield logits.detach(), order, g[0]


def input_gradients(
    model: nn.Module, x: torch.Tensor, classes: Sequence[int] | str | None = None
) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """(logits (C,), order, (K, 3, H, W) input gradients of the classes in order); see
    `iter_input_gradients`."""
    steps = list(iter_input_gradients(model, x, classes))
    return steps[0][0], steps[0][1], torch.stack([g for _, _, g in steps])


def saliency_maps(grads: torch.Tensor, signed: bool = False) -> np.ndarray:
    """(K, H, W) saliency from (K, 3, H, W) input gradients.

    Unsigned: max over colour channels of |df_c/dx| (Simonyan et al. 2013). Signed: the gradient summed over
    the colour channels, so that its sign says whether brightening a pixel raises the class score.
    """
    if signed:
        return grads.sum(1).cpu().numpy()
    return grads.abs().amax(1).cpu().numpy()


def gradxinput_maps(x: torch.Tensor, grads: torch.Tensor) -> np.ndarray:
    """(K, H, W): x * df_c/dx summed over colour channels.

    This is the input map of RF score propagation (de la Torre et al., arXiv:1712.08107): S_i at the input
    is lambda * x with lambda = df_c/dx, so the two coincide exactly.
    """
    return (x.detach() * grads).sum(1).cpu().numpy()
