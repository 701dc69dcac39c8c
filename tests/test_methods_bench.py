"""The Captum row of `retinaview bench --methods` measures the same completeness as our ig at equal steps."""

from __future__ import annotations

import pytest
import torch

from retinaview.core.bench_methods import captum_ig
from retinaview.core.explain.ig import integrated_gradients, make_baseline
from tests.helpers_methods import tiny_input, tiny_model

torch.set_num_threads(1)


def test_captum_row_and_ours_agree_at_equal_steps():
    model, x = tiny_model(), tiny_input()
    base = make_baseline(model, x, "halfgray")
    ours = integrated_gradients(model, x, base, [2], steps=12)
    attr, err = captum_ig(model, x, base, 2, steps=12)
    torch.testing.assert_close(ours.attr[0], attr[0], rtol=0, atol=1e-7 * attr.abs().max().item())
    assert err == pytest.approx(float(ours.completeness[0]), rel=1e-5)
