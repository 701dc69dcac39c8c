"""A cheap, learnable stand-in for the synthetic generator: training tests run in seconds."""

from __future__ import annotations

import numpy as np

from retinaview.core import synthetic


class FakeSample:
    def __init__(self, image, grade):
        self.image, self.grade = image, grade


def fake_generate(
    seed, grade=None, size=640, frequencies=synthetic.DEFAULT_CLASS_FREQUENCIES, eye=None
):
    """The grade sets the red level of a noisy image."""
    rng = np.random.default_rng(seed)
    if grade is None:
        grade = int(rng.choice(5, p=np.asarray(frequencies) / sum(frequencies)))
    image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    image[..., 0] += np.uint8(40 * grade)
    return FakeSample(image, grade)
