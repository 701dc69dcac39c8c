"""Vessel figures inside the field of view, against a case counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from retinaview.core.common.vessel_metrics import mean_scores, roc_auc, vessel_scores


def test_masked_scores_by_hand():
    truth = np.array(
        [
            [1, 1, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 0, 1],
            [1, 0, 0, 0],
        ],
        dtype=bool,
    )
    prob = np.array(
        [
            [0.9, 0.2, 0.1, 0.7],
            [0.1, 0.8, 0.3, 0.1],
            [0.2, 0.1, 0.1, 0.9],
            [0.9, 0.9, 0.9, 0.9],
        ]
    )
    fov = np.ones((4, 4), dtype=bool)
    fov[3] = False  # the last row is outside the field of view and must not count
    s = vessel_scores(prob, truth, fov)
    # Inside the FOV (12 pixels): vessels at (0,0) (0,1) (1,1) (2,3); called vessel: (0,0) (0,3) (1,1) (2,3)
    tp, fp, fn, tn = 3, 1, 1, 7
    assert s.pixels == 12
    assert s.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert s.iou_vessel == pytest.approx(tp / (tp + fp + fn))
    assert s.iou_background == pytest.approx(tn / (tn + fp + fn))
    assert s.miou == pytest.approx((3 / 5 + 7 / 9) / 2)
    assert s.accuracy == pytest.approx(10 / 12)
    assert s.sensitivity == pytest.approx(3 / 4) and s.specificity == pytest.approx(7 / 8)


def test_auc_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(300), 2)  # many ties
    labels = rng.random(300) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
        pos.size * neg.size
    )
    assert roc_auc(scores, labels) == pytest.approx(pairwise, abs=1e-12)
    assert np.isnan(roc_auc(scores, np.zeros(300, bool)))


def test_mean_scores_and_size_errors():
    truth = np.zeros((8, 8), bool)
    truth[2:4] = True
    rows = [vessel_scores(truth.astype(float), truth), vessel_scores(1.0 - truth, truth)]
    m = mean_scores(rows)
    assert m["images"] == 2 and m["f1"] == pytest.approx(0.5) and m["miou"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="differ in size"):
        vessel_scores(np.zeros((4, 4)), np.zeros((4, 5), bool))
