"""The explanation methods beside RF score propagation, registered by name with the method contract of
`retinaview.core.explain.methods`: saliency, gradxinput, ig, layer_ig, ig_counterfactual, cam, gradcam,
contrast. Importing this module registers them (`retinaview.core.api` does).

The computations live in their own modules (`gradients`, `ig`, `layer_ig`, `counterfactual`, `cam`,
`contrast`); here they become `Explanation` results. Gradient methods run on the copy with batch norm folded
into the convolutions (the same function at float precision, for less work).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.result import Explanation
from retinaview.core.explain.cam import cam, gradcam
from retinaview.core.explain.contrast import contrast
from retinaview.core.explain.counterfactual import DEFAULT_FACTORS, ig_counterfactuals
from retinaview.core.explain.fold import folded_for_explanation
from retinaview.core.explain.gradients import iter_input_gradients
from retinaview.core.explain.ig import integrated_gradients, make_baseline
from retinaview.core.explain.layer_ig import layer_ig
from retinaview.core.explain.methods import (
    PartialCallback,
    StopCheck,
    assemble,
    expand_rows,
    method,
    stop_if,
)

COMPLETENESS = "completeness error"
CAM_IDENTITY = "CAM identity error"
CONTRAST_SUM = "contrast sum error"


def _gradient_method(
    name: str,
    model: nn.Module,
    x: torch.Tensor,
    classes,
    on_partial: PartialCallback | None,
    should_stop: StopCheck | None,
    row: Callable[[torch.Tensor], torch.Tensor],
    params: dict,
) -> Explanation:
    """One forward, then one input-gradient backward per class; ``row(grad)`` -> (H, W) map."""
    rows: list[torch.Tensor] = []
    done: list[int] = []
    ex = None
    for logits, order, g in iter_input_gradients(folded_for_explanation(model), x, classes):
        rows.append(row(g))
        done.append(order[len(done)])
        ex = assemble(model, name, logits, torch.stack(rows), done, params=params)
        if len(done) < len(order):
            if on_partial is not None:
                on_partial(ex)
            stop_if(should_stop)
    assert ex is not None
    return ex


@method("saliency")
def explain_saliency(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    signed: bool = False,
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
) -> Explanation:
    """Saliency (Simonyan et al. 2013): max over RGB of |df_c/dx|; ``signed``: df_c/dx summed over RGB.

    All classes share one forward pass; each costs one input-gradient backward.
    """
    row = (lambda g: g.sum(0)) if signed else (lambda g: g.abs().amax(0))
    params = {"signed": bool(signed)}
    return _gradient_method("saliency", model, x, classes, on_partial, should_stop, row, params)


@method("gradxinput")
def explain_gradxinput(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
) -> Explanation:
    """Gradient x input: x * df_c/dx summed over RGB, which is RF score propagation's input map
    (de la Torre et al., arXiv:1712.08107) without the layers' constant parts."""
    xd = x.detach()
    return _gradient_method(
        "gradxinput", model, x, classes, on_partial, should_stop, lambda g: (xd[0] * g).sum(0), {}
    )


@method("ig")
def explain_ig(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    steps: int = 32,
    quadrature: str = "gausslegendre",
    baseline: str = "halfgray",
    blur_sigma: float | None = None,
    batch_size: int | None = None,
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Explanation:
    """Integrated gradients (Sundararajan et al. 2017); see `retinaview.core.explain.ig`.

    ``check`` is the worst completeness error of the classes computed; ``params["completeness"]`` has one per
    class (NaN for classes not computed). The predicted class comes first (``on_partial``), then the others
    sharing their forward passes; ``should_stop`` is checked and ``on_progress(done, total)`` called between
    batches of steps.
    """
    net = folded_for_explanation(model)
    ref = make_baseline(model, x, baseline, blur_sigma)
    params = {
        "steps": int(steps),
        "quadrature": quadrature,
        "baseline": baseline,
        "blur_sigma": blur_sigma,
    }

    def progress(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(done, total)
        if done < total:
            stop_if(should_stop)

    def build(res) -> Explanation:
        n = len(res.logits)
        per_class = expand_rows(np.asarray(res.completeness, dtype=np.float64), res.order, n)
        return assemble(
            model,
            "ig",
            torch.from_numpy(res.logits),
            res.maps(),
            res.order,
            check_name=COMPLETENESS,
            check=float(np.max(res.completeness)),
            params={
                **params,
                "completeness": [float(v) for v in per_class],
                "baseline_logits": [float(v) for v in res.baseline_logits],
                "forwards": res.forwards,
            },
        )

    res = integrated_gradients(
        net,
        x,
        ref,
        classes,
        steps=steps,
        quadrature=quadrature,
        batch_size=batch_size,
        on_progress=progress,
        on_partial=None if on_partial is None else (lambda part: on_partial(build(part))),
    )
    return build(res)


@method("cam")
def explain_cam(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
) -> Explanation:
    """Class activation maps (Zhou et al. 2016), every class from one forward pass without a graph.

    ``check``: the worst |mean(CAM_c) + b_c - f_c| relative to |f_c| + |b_c| + mean|CAM_c| (0 up to float
    precision); the hidden-grid maps are upsampled bilinearly for display.
    """
    res = cam(model, x, classes)
    head = dict(model.named_modules())[model.spec.classifier]
    b = head.bias.detach().double().cpu().numpy()[res.order] if head.bias is not None else 0.0
    scale = np.abs(res.logits[res.order]) + np.abs(b) + np.abs(res.hidden).mean((1, 2))
    check = float(np.max(np.abs(res.residual) / np.maximum(scale, np.finfo(float).tiny)))
    return assemble(
        model,
        "cam",
        torch.from_numpy(res.logits),
        res.maps,
        res.order,
        check_name=CAM_IDENTITY,
        check=check,
        params={"layer": res.layer, "residual": [float(v) for v in res.residual]},
    )


@method("gradcam")
def explain_gradcam(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    layer: str | None = None,
    relu: bool = True,
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
) -> Explanation:
    """Grad-CAM (Selvaraju et al. 2017) at the module named ``layer`` (default: the last explained layer);
    ``relu=False`` keeps the signed map. One forward pass; one backward per class from the logits to the
    layer only."""
    res = gradcam(folded_for_explanation(model), x, layer, classes, relu=relu)
    return assemble(
        model,
        "gradcam",
        torch.from_numpy(res.logits),
        res.maps,
        res.order,
        params={"layer": res.layer, "relu": bool(relu)},
    )


@method("contrast")
def explain_contrast(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    k: int | None = None,
    j: int | None = None,
    base: str = "rfscore",
    steps: int = 32,
    quadrature: str = "gausslegendre",
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
) -> Explanation:
    """The map of class ``k`` minus the map of class ``j`` by ``base`` ("rfscore", exact: it sums to
    f_k - f_j; or "ig"). Defaults: the predicted grade against the grade below. The map is row k of
    ``maps``; ``classes`` may name k as ``[k]``."""
    if k is None and classes not in (None, "predicted", "all"):
        picked = list(classes)
        if len(picked) != 1:
            raise RetinaviewError("contrast explains one class k at a time (give k=... and j=...)")
        k = int(picked[0])
    net = folded_for_explanation(model) if base == "ig" else model
    res = contrast(net, x, k, j, base, steps=steps, quadrature=quadrature)
    return assemble(
        model,
        "contrast",
        torch.from_numpy(res.logits),
        res.map[None],
        [res.k],
        check_name=CONTRAST_SUM,
        check=res.residual,
        params={"k": res.k, "j": res.j, "base": base, "expected_sum": res.expected},
    )


@method("layer_ig")
def explain_layer_ig(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    layer: str | None = None,
    top_k: int = 3,
    steps: int = 32,
    quadrature: str = "gausslegendre",
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
) -> Explanation:
    """Layer IG towards one class (default: predicted) at ``layer``, then neuron IG of its ``top_k``
    positive and negative channels: map kinds ``positive`` (the method's map) and ``negative``, the
    attribution-weighted sums of those channels' pixel maps. ``params``: the ranked channels and their
    attributions. ``check``: the layer IG's completeness error."""
    target = None
    if classes not in (None, "predicted", "all"):
        picked = list(classes)
        if len(picked) != 1:
            raise RetinaviewError("layer_ig explains one class at a time (classes=[c])")
        target = int(picked[0])
    res = layer_ig(model, x, layer, target, top_k=top_k, steps=steps, quadrature=quadrature)
    ex = assemble(
        model,
        "layer_ig",
        torch.from_numpy(res.logits),
        res.positive_map[None],
        [res.target],
        check_name=COMPLETENESS,
        check=res.completeness,
        map_kind="positive",
        params={
            "layer": res.layer,
            "top_k": int(top_k),
            "steps": int(steps),
            "ranked": res.ranked,
            "channel_attr": [float(v) for v in res.channel_attr],
            "positive": res.positive,
            "negative": res.negative,
        },
    )
    ex.extra_maps["negative"] = expand_rows(res.negative_map[None], [res.target], len(res.logits))
    return ex


@method("ig_counterfactual")
def explain_ig_counterfactual(
    model: nn.Module,
    x: torch.Tensor,
    *,
    classes: Sequence[int] | str | None = None,
    target: int | None = None,
    factors: Sequence[float] = DEFAULT_FACTORS,
    steps: int = 32,
    quadrature: str = "gausslegendre",
    on_partial: PartialCallback | None = None,
    should_stop: StopCheck | None = None,
) -> Explanation:
    """IG counterfactuals towards ``target`` (default: the grade above the predicted one).

    The method's map is the IG map of ``target``; map kinds ``difference_c<factor>`` hold each
    counterfactual minus the image, summed over RGB; ``params["probs"]`` the probabilities of each
    counterfactual (one row per factor). `retinaview.core.explain.counterfactual.ig_counterfactuals` gives the
    RGB images.
    """
    if target is None and classes not in (None, "predicted", "all"):
        picked = list(classes)
        if len(picked) != 1:
            raise RetinaviewError("ig_counterfactual explains one target at a time (target=c)")
        target = int(picked[0])
    if isinstance(factors, (int, float)):
        factors = [factors]
    net = folded_for_explanation(model)
    res = ig_counterfactuals(net, x, target, factors, steps=steps, quadrature=quadrature)
    ex = assemble(
        model,
        "ig_counterfactual",
        torch.from_numpy(res.image_logits),
        res.attr[None],
        [res.target],
        check_name=COMPLETENESS,
        check=res.completeness,
        params={
            "target": res.target,
            "factors": [float(f) for f in res.factors],
            "probs": res.probs.tolist(),
            "target_probs": [float(p) for p in res.probs[:, res.target]],
            "steps": int(steps),
        },
    )
    n = len(ex.logits)
    for f, diff in zip(res.factors, res.difference, strict=True):
        ex.extra_maps[f"difference_c{f:g}"] = expand_rows(diff.sum(-1)[None], [res.target], n)
    return ex
