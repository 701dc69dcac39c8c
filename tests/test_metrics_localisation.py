"""Localisation figures on tiny maps whose answers are known by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.metrics.localisation import (
    detection_auc,
    localisation,
    localisation_per_type,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)

MAP = np.array(
    [
        [0.0, 1.0, 2.0, -1.0],
        [0.5, 4.0, 3.0, 0.0],
        [0.0, 0.0, -2.0, 0.0],
        [9.0, 0.0, 0.0, 0.0],
    ]
)
MASK = np.zeros((4, 4), bool)
MASK[1, 1:3] = True  # values 4 and 3
FOV = np.ones((4, 4), bool)
FOV[3, 0] = False  # the 9 lies outside the field of view


def test_relevance_mass_by_hand():
    assert relevance_mass(MAP, MASK, FOV) == pytest.approx(7.0 / 10.5)
    assert relevance_mass(MAP, MASK, FOV, use="abs") == pytest.approx(7.0 / 13.5)
    assert relevance_mass(MAP, MASK) == pytest.approx(7.0 / 19.5)
    assert np.isnan(relevance_mass(np.zeros((4, 4)), MASK, FOV))


def test_rank_accuracy_by_hand():
    assert relevance_rank_accuracy(MAP, MASK, FOV) == 1.0  # the two largest are 4 and 3
    mask = MASK.copy()
    mask[0, 0] = True  # K = 3: top three are 4, 3, 2 -> two of three inside
    assert relevance_rank_accuracy(MAP, mask, FOV) == pytest.approx(2 / 3)


def test_pointing_game_by_hand():
    assert pointing_game(MAP, MASK, FOV) == 1.0
    assert pointing_game(MAP, MASK) == 0.0  # without the FOV the maximum is the 9 outside the mask
    other = np.zeros((4, 4), bool)
    other[0, 1] = True
    assert pointing_game(MAP, other, FOV) == 0.0
    assert (
        pointing_game(MAP, other, FOV, tolerance=1) == 1.0
    )  # the maximum (1, 1) is 4-adjacent to (0, 1)


def test_auc_is_the_share_of_pairs_ordered_right():
    values, inside = MAP[FOV], MASK[FOV]
    pairs = list(itertools.product(values[inside], values[~inside]))
    expected = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert detection_auc(MAP, MASK, FOV) == pytest.approx(expected)
    flat = np.zeros((4, 4))
    assert detection_auc(flat, MASK, FOV) == pytest.approx(0.5)


def test_all_figures_and_share():
    out = localisation(MAP, MASK, FOV)
    assert out["share"] == pytest.approx(2 / 15)
    assert set(out) == {"mass", "rank", "pointing", "auc", "share"}


def test_per_type_skips_empty_masks_and_adds_the_union():
    a = MASK.copy()
    b = np.zeros((4, 4), bool)
    b[0, 1] = True
    out = localisation_per_type(MAP, {"a": a, "b": b, "none": np.zeros((4, 4), bool)}, FOV)
    assert set(out) == {"a", "b", "any"}
    assert out["any"]["mass"] == pytest.approx(8.0 / 10.5)


def test_shapes_must_match():
    with pytest.raises(RetinaviewError, match="differ in shape"):
        localisation(MAP, np.zeros((3, 3), bool), FOV)
