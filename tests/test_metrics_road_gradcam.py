"""Oracle: our noisy linear imputation without noise equals pytorch-grad-cam's ROAD imputer (Gildenblat et
al.), which follows Rong et al.'s own code. Skipped where pytorch-grad-cam is not installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retinaview.core.metrics.road import impute

road = pytest.importorskip("pytorch_grad_cam.metrics.road")


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_imputation_equals_pytorch_grad_cam(share):
    rng = np.random.default_rng(int(share * 10))
    img = rng.random((24, 20, 3))
    removed = rng.random((24, 20)) < share
    removed[0, :4] = True  # the border, where the weights of missing neighbours drop out
    ours = impute(img, removed, noise=0.0)
    theirs = road.NoisyLinearImputer(noise=0.0)(
        torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32)),
        torch.from_numpy((~removed).astype(np.float32)),
    )
    np.testing.assert_allclose(ours, theirs.numpy().transpose(1, 2, 0), atol=1e-5)
