"""Saliency, gradient x input, integrated gradients: against Captum in float64, and their invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.explain.gradients import gradxinput_maps, input_gradients, saliency_maps
from retinaview.core.explain.ig import integrated_gradients, make_baseline, quadrature_rule
from tests.helpers_methods import tiny_input, tiny_model

torch.set_num_threads(1)


def test_saliency_and_gradxinput_equal_captum():
    from captum.attr import InputXGradient, Saliency

    model, x = tiny_model(), tiny_input()
    logits, order, grads = input_gradients(model, x)
    assert order[0] == int(logits.argmax()) and sorted(order) == list(range(5))
    sal, sal_signed = saliency_maps(grads), saliency_maps(grads, signed=True)
    gxi = gradxinput_maps(x, grads)
    for j, c in enumerate(order):
        ref = (
            Saliency(model).attribute(x.clone().requires_grad_(True), target=c, abs=True)[0].amax(0)
        )
        np.testing.assert_allclose(sal[j], ref.numpy(), rtol=0, atol=1e-12)
        raw = (
            Saliency(model).attribute(x.clone().requires_grad_(True), target=c, abs=False)[0].sum(0)
        )
        np.testing.assert_allclose(sal_signed[j], raw.numpy(), rtol=0, atol=1e-12)
        ref = InputXGradient(model).attribute(x.clone().requires_grad_(True), target=c)[0].sum(0)
        np.testing.assert_allclose(gxi[j], ref.detach().numpy(), rtol=0, atol=1e-12)
    assert np.abs(sal).max() > 1e-3


def test_gradxinput_is_the_rf_input_map():
    from retinaview.core.explain.rfscore import decompose

    model, x = tiny_model(), tiny_input()
    _, order, grads = input_gradients(model, x)
    d = decompose(model, x, model.spec.explained_layers, "head", classes=order)
    np.testing.assert_allclose(gradxinput_maps(x, grads), d.input.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("ours", "theirs"), [("gausslegendre", "gausslegendre"), ("trapezoid", "riemann_trapezoid")]
)
@pytest.mark.parametrize("kind", ["halfgray", "black", "blurred"])
def test_integrated_gradients_equal_captum(ours, theirs, kind):
    from captum.attr import IntegratedGradients

    model, x = tiny_model(), tiny_input()
    base = make_baseline(model, x, kind)
    steps = 7
    res = integrated_gradients(model, x, base, steps=steps, quadrature=ours, batch_size=3)
    # Captum's riemann_trapezoid gives the n-point trapezoid's weights times (n - 1) / n (step 1 / n on
    # n points spanning [0, 1]); ours sum to 1. Captum rounds the weights to float32: tolerance 1e-7 of the map.
    scale = steps / (steps - 1) if ours == "trapezoid" else 1.0
    ig = IntegratedGradients(model)
    for j, c in enumerate(res.order):
        ref = ig.attribute(x, base, target=c, n_steps=steps, method=theirs)[0]
        ref = scale * ref.numpy()
        np.testing.assert_allclose(res.attr[j].numpy(), ref, rtol=0, atol=1e-7 * np.abs(ref).max())
    # A preview of the predicted class (a quarter of the steps, at least the rule's minimum), then all five
    # classes sharing each forward pass.
    assert res.forwards == steps + (1 if ours == "gausslegendre" else 2)
    assert res.attr.abs().max() > 1e-4


def test_quadrature_weights_and_range():
    for name in ("gausslegendre", "trapezoid"):
        nodes, w = quadrature_rule(name, 9)
        assert abs(w.sum() - 1) < 1e-14 and nodes.min() >= 0 and nodes.max() <= 1
        # Exact for polynomials: the integral of 3 a^2 over [0, 1] is 1.
        assert abs((w * 3 * nodes**2).sum() - 1) < (1e-14 if name == "gausslegendre" else 0.01)
    with pytest.raises(RetinaviewError, match="steps=1"):
        quadrature_rule("trapezoid", 1)
    with pytest.raises(RetinaviewError, match="choices: gausslegendre, trapezoid"):
        quadrature_rule("simpson", 9)


def test_completeness_error_falls_as_steps_grow_on_a_smooth_model():
    model, x = tiny_model(smooth=True), tiny_input()
    base = make_baseline(model, x, "black")
    errors = {
        q: [
            integrated_gradients(model, x, base, steps=n, quadrature=q).completeness.max()
            for n in (2, 4, 8, 16)
        ]
        for q in ("gausslegendre", "trapezoid")
    }
    for q, e in errors.items():
        assert all(b < a for a, b in zip(e, e[1:], strict=False)), (q, e)
    assert errors["gausslegendre"][-1] < 1e-10
    assert errors["trapezoid"][-1] < 1e-3


def test_progress_streams_predicted_class_first_and_can_stop_between_steps():
    model, x = tiny_model(), tiny_input()
    base = make_baseline(model, x, "halfgray")
    seen, partial = [], []
    res = integrated_gradients(
        model,
        x,
        base,
        steps=8,
        batch_size=2,
        on_progress=lambda d, t: seen.append((d, t)),
        on_partial=partial.append,
    )
    assert seen == [(2, 10), (4, 10), (6, 10), (8, 10), (10, 10)]
    pred = int(np.argmax(res.logits))
    assert res.order[0] == pred and sorted(res.order) == list(range(5))
    # The preview: the predicted class alone at a quarter of the steps, with its own completeness error.
    assert len(partial) == 1 and partial[0].order == [pred]
    alone = integrated_gradients(model, x, base, [pred], steps=2)
    np.testing.assert_allclose(partial[0].attr.numpy(), alone.attr.numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(partial[0].completeness, alone.completeness, rtol=0, atol=1e-15)

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 4:
            raise Stop

    with pytest.raises(Stop):
        integrated_gradients(model, x, base, steps=6, batch_size=2, on_progress=stop)
