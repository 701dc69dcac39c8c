"""A numpy-only stand-in for the torch backend: tests, GUI benchmarks and screenshots without a model.

It produces explanations with the real `Explanation` layout and its invariants (the total map of each class
sums to the logit; the conservation residual is at float precision), from cheap image statistics, so the
GUI can be exercised in milliseconds instead of seconds. It is not a classifier.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from retinaview.core.explain.result import Explanation, LayerRecord
from retinaview.engine.requests import ModelInfo

CLASS_NAMES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")


@dataclass
class FakeModel:
    """What `FakeBackend.load` returns: a name and an input size."""

    name: str
    input_size: int


@dataclass
class SquareGeometry:
    """The photograph scaled to a square of ``size`` pixels (no crop, no padding), as an affine per axis."""

    photo_hw: tuple[int, int]
    size: int

    @property
    def affine(self) -> tuple[float, float, float, float]:
        ay, ax = self.photo_hw[0] / self.size, self.photo_hw[1] / self.size
        return ay, (ay - 1) / 2, ax, (ax - 1) / 2

    def to_photo(self, map2d: np.ndarray) -> np.ndarray:
        rows = (np.arange(self.photo_hw[0]) * self.size // self.photo_hw[0]).astype(np.intp)
        cols = (np.arange(self.photo_hw[1]) * self.size // self.photo_hw[1]).astype(np.intp)
        return map2d[np.ix_(rows, cols)]


class FakeBackend:
    """``load``/``explain``/``predict`` like `TorchBackend`, in numpy.

    ``delay``: seconds each explanation takes (to test that stale requests are dropped).
    ``fail_load``: names whose loading raises (to test model errors). ``input_size``: model resolution.
    """

    def __init__(self, delay: float = 0.0, input_size: int = 256, fail_load: tuple[str, ...] = ()):
        self.delay = delay
        self.input_size = input_size
        self.fail_load = fail_load
        self.explained: list[tuple[int, int]] = []

    def load(self, name: str) -> tuple[FakeModel, ModelInfo]:
        from retinaview.core.errors import CheckpointError

        if name in self.fail_load:
            raise CheckpointError(f"{name}: not a retinaview checkpoint (fake backend)")
        info = ModelInfo(
            model_id=f"fake:{name}",
            arch="fake",
            source=f"fake model {name}",
            class_names=CLASS_NAMES,
            device="CPU (fake)",
            input_size=self.input_size,
        )
        return FakeModel(name, self.input_size), info

    def predict(self, model: FakeModel, image: np.ndarray) -> np.ndarray:
        logits = _logits(_square(image, 32))
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def explain(
        self, model: FakeModel, image: np.ndarray, method: str, params: dict[str, Any]
    ) -> Explanation:
        t0 = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        n = model.input_size
        display = _square(image, n)
        self.explained.append(image.shape[:2])
        return fake_explanation(display, image.shape[:2], method, time.perf_counter() - t0)


def _square(image: np.ndarray, n: int) -> np.ndarray:
    rows = (np.arange(n) * image.shape[0] // n).astype(np.intp)
    cols = (np.arange(n) * image.shape[1] // n).astype(np.intp)
    return np.ascontiguousarray(image[np.ix_(rows, cols)])


def _logits(small: np.ndarray) -> np.ndarray:
    """Five logits from colour statistics: deterministic, different between images."""
    m = small.reshape(-1, 3).astype(np.float64).mean(0) / 255.0
    s = small.reshape(-1, 3).astype(np.float64).std(0) / 255.0
    return np.array([3 * m[0], 4 * s[1], 2 * m[1] + s[0], 5 * s[2], 6 * m[2]]) - 1.0


def _blur(a: np.ndarray, passes: int = 3) -> np.ndarray:
    for _ in range(passes):
        a = (a + np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1)) / 5
    return a


def fake_explanation(
    display: np.ndarray, photo_hw: tuple[int, int], method: str = "rfscore", seconds: float = 0.0
) -> Explanation:
    """An `Explanation` of a square (n, n, 3) uint8 image with exact conservation."""
    n = display.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    fov = r < 0.47 * n
    logits = _logits(display)
    bias = np.linspace(-0.2, 0.2, 5)
    g = display[..., 1].astype(np.float64) / 255.0
    detail = g - _blur(g, 6)
    red = display[..., 0].astype(np.float64) / 255.0 - 0.5
    waves = np.sin(xx / n * 7.0) * np.cos(yy / n * 5.0)
    c = len(logits)
    inp = np.empty((c, n, n))
    sk = np.empty((c, n, n))
    for k in range(c):
        pattern = _blur(detail * (k - 2) * 4 + red * 0.3 * np.cos(k) + 0.2 * waves * (k - 1.5), 2)
        pattern = np.where(fov, pattern, 0.0)
        sk[k] = np.where(fov, 0.05 * np.sin(yy / n * (3 + k)), 0.0)
        inp[k] = pattern - pattern.mean() + (logits[k] - bias[k] - sk[k].sum()) / (n * n)
    total = inp + sk + bias[:, None, None] / (n * n)
    layer = LayerRecord(
        name="fake_layer", si=inp + sk, sk=sk, rf=n, jump=1, offset=(0.0, 0.0), shape=(c, n, n)
    )
    e = np.exp(logits - logits.max())
    return Explanation(
        method=method,
        logits=logits,
        probs=e / e.sum(),
        bias=bias,
        input=inp.astype(np.float32),
        total=total.astype(np.float32),
        fov=fov,
        layers=[layer],
        features=None,
        class_names=CLASS_NAMES,
        display=display,
        geometry=SquareGeometry(tuple(photo_hw), n),
        seconds=seconds,
    )
