"""Explaining a vessel segmentation network (DRIU, Maninis et al., MICCAI 2016) layer by layer.

A segmentation network has one logit per pixel, so the explained score is the summed vessel logit of the whole
image or of a region the user draws (a rectangle or a brush stroke): ``f = sum over (u, v) in R of z[u, v]``.

- `layer_gradcams`: Grad-CAM (Selvaraju et al., ICCV 2017) at every layer of the network, from one forward and
  one backward pass: per layer, channel weights ``w_k = mean over (i, j) of df/dA_k[i, j]`` and the map
  ``sum_k w_k A_k`` (ReLU'd, or signed: positive for, negative against), upsampled bilinearly to the input.
- `vessel_rfscore`: exact receptive-field score propagation (de la Torre, Valls and Puig, arXiv:1712.08107) of
  the same summed logit, into input pixels and per-layer constants, with its conservation check.

``vessel_gradcams`` and ``vessel_rfscore`` take a photograph and preprocess it like `retinaview.core.segment`.
A region is given on the model's input grid, (S, S) bool; a mask drawn on the photograph is mapped onto it
with `region_on_model`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.rfscore import inplace_disabled
from retinaview.core.segment import Segmentation, check_vessel_model


def gradcam_layers(model: nn.Module) -> list[str]:
    """The layers Grad-CAM is computed at: the model's own list when it has one, else every ReLU.

    Parameters
    ----------
    model : torch.nn.Module
        A DRIU (or any segmentation network).

    Returns
    -------
    list of str
        Module names, input to output.
    """
    from retinaview.core.models.driu import DRIU
    from retinaview.core.models.driu import gradcam_layers as driu_layers

    if isinstance(model, DRIU):
        return driu_layers(model)
    return [name for name, m in model.named_modules() if isinstance(m, nn.ReLU)]


def region_tensor(region: Any, hw: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """The (H, W) 0/1 weight of the summed logit: all ones for ``None``, else the bool mask.

    Raises
    ------
    RetinaviewError
        When the mask has the wrong shape or selects no pixel.
    """
    if region is None:
        return torch.ones(hw, dtype=like.dtype, device=like.device)
    r = np.asarray(region)
    if r.shape != tuple(hw):
        raise RetinaviewError(
            f"region of shape {r.shape} does not match the model's {hw[0]}x{hw[1]} input"
        )
    if not r.astype(bool).any():
        raise RetinaviewError("the region selects no pixel")
    return torch.from_numpy(r.astype(bool)).to(dtype=like.dtype, device=like.device)


def region_on_model(segmentation: Segmentation, photo_mask: np.ndarray) -> np.ndarray:
    """A mask drawn on the photograph -> the (S, S) bool region on the model's grid.

    Parameters
    ----------
    segmentation : Segmentation
        The segmentation of that photograph (its geometry maps the photograph to the model).
    photo_mask : numpy.ndarray
        (H, W) bool, the photograph's shape.

    Returns
    -------
    numpy.ndarray
        (S, S) bool: model pixels whose centre falls in the mask.
    """
    m = segmentation.geometry.to_model(np.asarray(photo_mask, dtype=np.float32), order=1)
    return np.asarray(m) >= 0.5


def summed_logit(logits: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The explained score: the vessel logits (N, 1, H, W) summed over the region, one per image."""
    return (logits[:, 0] * region).sum((-2, -1))


def layer_gradcams(
    model: nn.Module,
    x: torch.Tensor,
    region: Any = None,
    layers: Sequence[str] | None = None,
    relu: bool = True,
    *,
    return_logits: bool = False,
) -> Any:
    """Grad-CAM (Selvaraju et al. 2017) at every layer, target = the summed vessel logit of a region.

    One forward pass records every layer's activation ``A`` (forward hooks), one backward pass gives
    ``df/dA`` for all of them. Per layer, ``w_k = mean over (i, j) of df/dA_k[i, j]``,
    ``map = sum_k w_k A_k``, ReLU'd when ``relu``, then upsampled bilinearly to the input size (as Captum's
    ``LayerGradCam`` followed by ``LayerAttribution.interpolate``).

    Parameters
    ----------
    model : torch.nn.Module
        A vessel segmentation network in eval mode, ``model(x)`` -> (1, 1, H, W) logits.
    x : torch.Tensor
        (1, C, H, W) the normalised input.
    region : numpy.ndarray, optional
        (H, W) bool: the pixels whose logits are summed; ``None`` sums the whole image.
    layers : sequence of str, optional
        Module names; by default `gradcam_layers` of the model.
    relu : bool
        Keep only the positive part (Grad-CAM); False keeps the signed map (positive: the layer's features
        raise the summed logit, negative: they lower it).
    return_logits : bool
        Also return the (H, W) logits of the forward pass.

    Returns
    -------
    dict of str to numpy.ndarray
        Per layer, input to output, the (H, W) map in the input's float type; with ``return_logits``, a
        tuple ``(maps, logits)``.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError("layer_gradcams expects one image: a (1, C, H, W) tensor")
    names = list(gradcam_layers(model) if layers is None else layers)
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise RetinaviewError(f"layers not found in the model: {', '.join(missing)}")
    acts: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(module, inputs, output):
            acts[name] = output

        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    # Weight gradients are not needed; leaving them on roughly doubles the backward pass.
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.enable_grad(), inplace_disabled(model):
            xg = x.detach().requires_grad_(True)
            logits = model(xg)
            target = summed_logit(logits, region_tensor(region, tuple(x.shape[-2:]), x)).sum()
            grads = torch.autograd.grad(target, [acts[n] for n in names], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        for p in params:
            p.requires_grad_(True)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    maps: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for name, g in zip(names, grads, strict=True):
            a = acts[name].detach()
            if g is None:
                cam = torch.zeros((1, 1, *a.shape[-2:]), dtype=a.dtype, device=a.device)
            else:
                w = g.mean((-2, -1), keepdim=True)
                cam = (w * a).sum(1, keepdim=True)
            if relu:
                cam = F.relu(cam)
            if tuple(cam.shape[-2:]) != size:
                cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
            maps[name] = cam[0, 0].cpu().numpy()
    if return_logits:
        return maps, logits.detach()[0, 0]
    return maps


@dataclass
class VesselGradCAMs:
    """Grad-CAM at every layer of a vessel network for one photograph.

    Attributes
    ----------
    maps : dict of str to numpy.ndarray
        Per layer, input to output, the (S, S) map on the model's grid (``segmentation.geometry.to_photo``
        puts one onto the photograph).
    segmentation : Segmentation
        The vessel segmentation from the same forward pass.
    region : numpy.ndarray or None
        (S, S) bool, the pixels whose summed logit is explained; None for the whole image.
    relu : bool
        Whether the maps are ReLU'd (else signed).
    target : float
        The explained score, the summed vessel logit of the region.
    seconds : float
        Wall time, preprocessing included.
    """

    maps: dict[str, np.ndarray]
    segmentation: Segmentation
    region: np.ndarray | None = None
    relu: bool = True
    target: float = 0.0
    seconds: float = 0.0
    layers: list[str] = field(default_factory=list)


def _prepare(model: nn.Module, image: Any):
    """The preprocessed photograph and the model's input, like `retinaview.core.segment.segment`."""
    from retinaview.core.models.inputs import to_input
    from retinaview.core.preprocess import Preprocessed, preprocess

    check_vessel_model(model)
    spec = model.spec
    pre = (
        image
        if isinstance(image, Preprocessed)
        else preprocess(image, spec.preprocessing, spec.input_size)
    )
    return pre, to_input(model, pre.image)


def _segmentation(model: nn.Module, pre: Any, logits: torch.Tensor, seconds: float) -> Segmentation:
    logits = logits.double()
    return Segmentation(
        logits=logits.float().cpu().numpy(),
        probability=torch.sigmoid(logits).float().cpu().numpy(),
        fov=pre.fov,
        display=pre.display,
        geometry=pre.geometry,
        seconds=seconds,
        threshold=float(model.spec.config.get("threshold", 0.5)),
    )


def vessel_gradcams(
    model: nn.Module, image: Any, region: Any = None, relu: bool = True
) -> VesselGradCAMs:
    """Per-layer Grad-CAM of the summed vessel logit for one photograph, with its segmentation.

    Parameters
    ----------
    model : torch.nn.Module
        A vessel model as `retinaview.core.segment.load_vessel_model` returns (with a ``spec``).
    image : str, pathlib.Path, PIL.Image.Image, numpy.ndarray or Preprocessed
        The photograph.
    region : numpy.ndarray, optional
        (S, S) bool on the model's grid (see `region_on_model`); ``None``: the whole image.
    relu : bool
        ReLU'd maps (True) or signed maps.

    Returns
    -------
    VesselGradCAMs
        The maps of every layer of `gradcam_layers` and the segmentation.
    """
    t0 = time.perf_counter()
    pre, x = _prepare(model, image)
    names = gradcam_layers(model)
    maps, logits = layer_gradcams(model, x, region, names, relu, return_logits=True)
    seg = _segmentation(model, pre, logits, time.perf_counter() - t0)
    target = float(
        summed_logit(
            logits[None, None].double(), region_tensor(region, logits.shape, logits.double())
        )
    )
    return VesselGradCAMs(
        maps=maps,
        segmentation=seg,
        region=None if region is None else np.asarray(region, dtype=bool),
        relu=relu,
        target=target,
        seconds=time.perf_counter() - t0,
        layers=names,
    )


class RegionSum(nn.Module):
    """``net`` followed by the sum of its vessel logits over a region: output (1, 1), one "class".

    Multiplying by the 0/1 region and summing is linear without a constant, so the exact decomposition of
    `retinaview.core.explain.rfscore` applies unchanged; the constant after the last explained layer is then
    the fuse layer's bias times the region's area.
    """

    def __init__(self, net: nn.Module, region: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("region", region, persistent=False)
        self.logits: torch.Tensor | None = None  # the per-pixel logits of the last forward pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        self.logits = logits.detach()
        return summed_logit(logits, self.region).reshape(-1, 1)


def vessel_decomposition(
    model: nn.Module,
    x: torch.Tensor,
    region: Any = None,
    layers: Sequence[str] | None = None,
    *,
    return_logits: bool = False,
) -> Any:
    """Exact RF score decomposition (arXiv:1712.08107) of the summed vessel logit of a region.

    Parameters
    ----------
    model : torch.nn.Module
        A vessel network in eval mode; ``model(x)`` -> (1, 1, H, W) logits.
    x : torch.Tensor
        (1, C, H, W) the normalised input.
    region : numpy.ndarray, optional
        (H, W) bool; ``None``: the whole image.
    layers : sequence of str, optional
        Explained layers (cuts of the network), input to output; by default the model's
        ``explained_layers`` (DRIU: relu1_1, relu1_2 and the side-output volume).

    Returns
    -------
    Decomposition
        One "class": ``logits`` (1,) the summed logit, ``input`` (1, H, W), per-layer S_i and S_k in hidden
        space, ``bias`` (1,) every constant after the last layer (the fuse bias times the region's area).
        With ``return_logits``, a tuple ``(decomposition, logits)`` with the (H, W) per-pixel logits.
    """
    from retinaview.core.explain.rfscore import decompose

    if layers is None:
        from retinaview.core.models.driu import DRIU, explained_layers

        if not isinstance(model, DRIU):
            raise RetinaviewError("give the explained layers of a network that is not a DRIU")
        layers = explained_layers(model)
    weight = region_tensor(region, (int(x.shape[-2]), int(x.shape[-1])), x)
    wrapped = RegionSum(model, weight).eval()
    dec = decompose(wrapped, x, [f"net.{n}" for n in layers])
    for layer, name in zip(dec.layers, layers, strict=True):
        layer.name = name
    if return_logits:
        return dec, cast(torch.Tensor, wrapped.logits)[0, 0]
    return dec


def vessel_rfscore(
    model: nn.Module,
    image: Any,
    region: Any = None,
    sigma_factor: float | None = None,
) -> Any:
    """RF score propagation of the summed vessel logit of a region, for one photograph.

    The summed logit is decomposed exactly into input pixels (``x * df/dx``), each explained layer's
    constants (S_k: biases of the convolutions before it, on its grid) and the fuse layer's bias. Every S_k
    map is spread into input space with the Gaussian prior of its layer's receptive field (transposed
    convolutions and crops followed, `retinaview.core.explain.receptive_field`); the final constant (the
    fuse bias at each pixel of the region) is put back on the region's pixels, where it is added.

    Parameters
    ----------
    model : torch.nn.Module
        A vessel model with a ``spec`` (`retinaview.core.segment.load_vessel_model`).
    image : str, pathlib.Path, PIL.Image.Image, numpy.ndarray or Preprocessed
        The photograph.
    region : numpy.ndarray, optional
        (S, S) bool on the model's grid (`region_on_model`); ``None``: the whole image.
    sigma_factor : float, optional
        The Gaussian prior's sigma as a fraction of the receptive field (default: rfscore's).

    Returns
    -------
    Explanation
        ``method`` "rfscore"; ``maps`` (1, S, S) the total input-space map (its sum is the summed logit);
        ``extra_maps["input"]``; ``layers`` with S_i and S_k (1, h, w) and their fields; ``bias`` (1,);
        ``logits`` (1,) the summed logit and ``probs`` the mean vessel probability in the region;
        ``check``: the conservation residual; ``params["region_pixels"]``.
    """
    from retinaview.core.common.gaussian_rf import DEFAULT_SIGMA_FACTOR, map_to_input
    from retinaview.core.common.result import Explanation, LayerRecord
    from retinaview.core.explain.receptive_field import receptive_fields
    from retinaview.core.models.driu import explained_layers

    t0 = time.perf_counter()
    sigma = DEFAULT_SIGMA_FACTOR if sigma_factor is None else float(sigma_factor)
    pre, x = _prepare(model, image)
    names = explained_layers(model)
    dec, logits = vessel_decomposition(model, x, region, names, return_logits=True)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    # The fields depend on the architecture and input size only: traced once (a forward pass) and kept.
    cached = getattr(model, "_retinaview_vessel_rfs", None)
    if cached is None or cached[0] != (size, tuple(names)):
        cached = ((size, tuple(names)), receptive_fields(model, names, size[0]))
        setattr(model, "_retinaview_vessel_rfs", cached)  # noqa: B010 (not a submodule)
    rfs = cached[1]
    total = dec.input.clone()
    for layer, rf in zip(dec.layers, rfs, strict=True):
        total += map_to_input(
            layer.sk, (rf.y.size, rf.x.size), (rf.y.jump, rf.x.jump), rf.offset, size, sigma
        )
    weight = region_tensor(region, size, total)
    total += dec.bias.reshape(-1, 1, 1) * weight / weight.sum()
    inside = region_tensor(region, size, logits).bool()
    probs = torch.sigmoid(logits.double())[inside].mean().reshape(1)

    def np_(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    ex = Explanation(
        method="rfscore",
        logits=np_(dec.logits),
        probs=np_(probs),
        maps=np_(total),
        fov=np.asarray(pre.fov, dtype=bool),
        map_kind="total",
        extra_maps={"input": np_(dec.input)},
        differences={"constant": ("total", "input")},
        check_name="conservation residual",
        classes=(0,),
        bias=np_(dec.bias),
        layers=[
            LayerRecord(
                name=layer.name,
                si=np_(layer.si),
                sk=np_(layer.sk),
                rf=rf.rf,
                jump=rf.jump,
                offset=rf.offset,
                shape=rf.shape,
            )
            for layer, rf in zip(dec.layers, rfs, strict=True)
        ],
        class_names=tuple(model.spec.class_names),
        display=pre.display,
        geometry=pre.geometry,
        params={
            "sigma_factor": sigma,
            "classes": [0],
            "region_pixels": int(weight.sum()),
            "target": "summed vessel logit",
        },
    )
    ex.check = ex.residual()
    ex.seconds = time.perf_counter() - t0
    return ex
