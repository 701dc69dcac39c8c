"""Metrics against hand-computed cases; losses against log(1 - kappa) by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from retinaview.train.losses import build_loss, weighted_kappa_loss
from retinaview.train.metrics import (
    confusion_matrix,
    grading_report,
    kappa_from_confusion,
    per_class,
    quadratic_weighted_kappa,
    roc_auc,
    sensitivity_at_specificity,
)


def test_qwk_perfect_and_known_confusion():
    y = [0, 1, 2, 3, 4, 0, 2]
    assert quadratic_weighted_kappa(y, y) == pytest.approx(1.0)
    # 3 classes: O = [[2,1,0],[0,1,1],[0,0,1]]; W = [[0,.25,1],[.25,0,.25],[1,.25,0]]
    # rows (3,2,1), cols (2,2,2), N=6: E = outer/6
    cm = np.array([[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    w = np.array([[0, 0.25, 1], [0.25, 0, 0.25], [1, 0.25, 0]])
    num = 1 * 0.25 + 1 * 0.25
    e = np.outer([3, 2, 1], [2, 2, 2]) / 6
    expected = 1 - num / (w * e).sum()
    assert kappa_from_confusion(cm) == pytest.approx(expected)
    assert expected == pytest.approx(1 - 0.5 / (w * e).sum())


def test_qwk_edge_cases():
    assert quadratic_weighted_kappa([0, 0], [0, 0]) == 1.0
    assert quadratic_weighted_kappa([0, 0], [1, 1]) == 0.0
    assert kappa_from_confusion(np.zeros((5, 5))) == 0.0
    # chance-level predictions: independent of the truth -> kappa about 0
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 5, 20000), rng.integers(0, 5, 20000)
    assert abs(quadratic_weighted_kappa(t, p)) < 0.03


def test_confusion_and_per_class():
    cm = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    pc = per_class(cm)
    assert pc[0] == {"grade": 0, "support": 2, "sensitivity": 0.5, "specificity": 1.0}
    assert pc[1]["sensitivity"] == 1.0 and pc[1]["specificity"] == pytest.approx(2 / 3)


def brute_auc(labels, scores):
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return total / (len(pos) * len(neg))


def test_auc_matches_pair_count_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.random(60) < 0.3
        s = np.round(rng.random(60) + y * 0.3, 1)  # rounding makes ties
        assert roc_auc(y, s) == pytest.approx(brute_auc(y, s))
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    assert roc_auc([0, 1], [0.1, 0.9]) == 1.0


def test_sensitivity_at_specificity():
    y = np.array([0] * 10 + [1] * 4)
    s = np.array([0.1 * i for i in range(10)] + [0.95, 0.85, 0.5, 0.05])
    # spec >= 0.9: threshold at the 9th smallest negative (0.8): positives > 0.8 -> 2 of 4
    assert sensitivity_at_specificity(y, s, 0.9) == 0.5


def test_grading_report_keys_and_referable():
    y = np.array([0, 0, 1, 2, 3, 4])
    probs = np.eye(5)[[0, 1, 1, 2, 3, 0]]
    rep = grading_report(y, probs)
    assert {"qwk", "accuracy", "confusion", "per_class", "referable", "n"} <= rep.keys()
    assert rep["n"] == 6 and rep["accuracy"] == pytest.approx(4 / 6)
    ref = rep["referable"]
    assert ref["sensitivity"] == pytest.approx(2 / 3) and ref["specificity"] == 1.0
    assert ref["auc"] == pytest.approx(brute_auc(y >= 2, probs[:, 2:].sum(1)))


def test_balanced_accuracy_is_not_carried_by_the_common_grade():
    # 90 grade-0 images all right, 10 grade-4 images all called grade 0: accuracy 0.9, mean recall 0.5.
    y = np.array([0] * 90 + [4] * 10)
    rep = grading_report(y, np.eye(5)[np.zeros(100, dtype=int)])
    assert rep["accuracy"] == pytest.approx(0.9)
    assert rep["balanced_accuracy"] == pytest.approx(0.5)  # grades 1-3 are absent, not zero recall
    assert [c["sensitivity"] for c in rep["per_class"]] == [1.0, None, None, None, 0.0]


def test_kappa_loss_equals_log_one_minus_kappa_by_hand():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 3.0], [0.3, 0.2, 0.1]])
    t = torch.tensor([0, 1, 2, 2])
    p = logits.softmax(1).double().numpy()
    n, k = p.shape
    w = np.array([[(i - j) ** 2 / (k - 1) ** 2 for j in range(k)] for i in range(k)])
    soft_confusion = np.zeros((k, k))
    for i in range(n):
        soft_confusion[t[i]] += p[i]
    e = np.outer(soft_confusion.sum(1), soft_confusion.sum(0)) / n
    kappa = 1 - (w * soft_confusion).sum() / (w * e).sum()
    loss = weighted_kappa_loss(logits, t)
    assert float(loss) == pytest.approx(np.log(1 - kappa), rel=1e-5)


def test_kappa_loss_decreases_towards_perfect_and_has_finite_gradients():
    t = torch.tensor([0, 1, 2, 3, 4, 2, 0, 1])
    onehot = torch.nn.functional.one_hot(t, 5).float()
    values = []
    for scale in (0.0, 1.0, 3.0, 6.0):
        logits = (onehot * scale).requires_grad_()
        loss = weighted_kappa_loss(logits, t)
        loss.backward()
        assert torch.isfinite(logits.grad).all()
        values.append(float(loss.detach()))
    assert values == sorted(values, reverse=True) and values[-1] < -3
    # optimising raw logits drives the loss down
    logits = torch.zeros(8, 5, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    first = None
    for _ in range(50):
        opt.zero_grad()
        loss = weighted_kappa_loss(logits, t)
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first - 1


@pytest.mark.parametrize("name", ["kappa", "ce", "kappa+ce"])
def test_build_loss(name):
    logits = torch.randn(6, 5, requires_grad=True)
    loss = build_loss(name)(logits, torch.tensor([0, 1, 2, 3, 4, 0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
