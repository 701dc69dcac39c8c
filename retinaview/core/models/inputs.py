"""The model's input: a preprocessed photograph normalised by the model's mean and spread.

One home for the step between `retinaview.core.preprocess` (a float image in [0, 1], or its 8-bit copy kept by
the training caches) and the network: training, evaluation, the viewer and ``retinaview explain`` all call it,
so every path feeds the model the same numbers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from retinaview.core.models.registry import ModelSpec, spec_of


def normalise(
    batch: torch.Tensor, spec: ModelSpec, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Normalise a batch of images with the model's per-channel mean and standard deviation.

    Parameters
    ----------
    batch : torch.Tensor
        (N, 3, H, W) images: uint8 in 0..255, or floating point in [0, 1].
    spec : ModelSpec
        The model's spec; ``spec.mean`` and ``spec.std`` are per-channel values for images in [0, 1].
    dtype : torch.dtype, optional
        Floating-point type of the result; default float32 for uint8 input, else the input's type.

    Returns
    -------
    torch.Tensor
        ``(batch / 255 - mean) / std`` for uint8 input, ``(batch - mean) / std`` otherwise, on the batch's
        device.
    """
    if batch.ndim != 4 or batch.shape[1] != len(spec.mean):
        raise ValueError(f"expected (N, {len(spec.mean)}, H, W) images, got {tuple(batch.shape)}")
    if batch.dtype == torch.uint8:
        x = batch.to(dtype or torch.float32) / 255.0
    elif batch.is_floating_point():
        x = batch if dtype is None else batch.to(dtype)
    else:
        raise ValueError(f"expected uint8 or floating-point images, got {batch.dtype}")
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return (x - mean) / std


def to_input(model: nn.Module, image01: np.ndarray) -> torch.Tensor:
    """One preprocessed photograph as the normalised input of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        A model with a ``spec`` attribute (`ModelSpec`), as `retinaview.core.model_loading.load_model` returns.
    image01 : numpy.ndarray
        (H, W, 3) float image in [0, 1], the ``image`` of `retinaview.core.preprocess.preprocess`.

    Returns
    -------
    torch.Tensor
        (1, 3, H, W) tensor on the model's device, in the type of its parameters.
    """
    param = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(image01).transpose(2, 0, 1))).unsqueeze(0)
    x = x.to(device=param.device, dtype=param.dtype)
    return normalise(x, spec_of(model))
