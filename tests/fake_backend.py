"""A numpy-only stand-in for the torch backend, for tests and GUI benchmarks only (never part of the app).

It produces explanations with the real `Explanation` layout and its invariants (the total map of each class
sums to the logit; the conservation residual is at float precision), from cheap image statistics, so the
GUI can be exercised in milliseconds instead of seconds. It is not a classifier.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from retinaview.core.common.result import Explanation, LayerRecord
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
    ``progressive``: explain class by class like the real method, calling ``on_partial`` after each class
    (predicted class first, the others NaN) with ``delay`` spread evenly over the classes.
    """

    def __init__(
        self,
        delay: float = 0.0,
        input_size: int = 256,
        fail_load: tuple[str, ...] = (),
        progressive: bool = False,
        gate: bool = False,
    ):
        if gate:
            # The real quality gate (model-free), as the torch backend runs it.
            self.quality = self._quality
        self.delay = delay
        self.input_size = input_size
        self.fail_load = fail_load
        self.progressive = progressive
        self.explained: list[tuple[int, int]] = []

    def load(self, name: str) -> tuple[FakeModel, ModelInfo]:
        from retinaview.core.common.errors import CheckpointError

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

    @staticmethod
    def _quality(image: np.ndarray) -> tuple[str, str]:
        from retinaview.core.quality import assess_quality

        verdict = assess_quality(image)
        return verdict.label, verdict.detail

    def predict(self, model: FakeModel, image: np.ndarray) -> np.ndarray:
        logits = _logits(_square(image, 32))
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def explain(
        self,
        model: FakeModel,
        image: np.ndarray,
        method: str,
        params: dict[str, Any],
        on_partial: Callable[[Explanation], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Explanation:
        """A made-up explanation; ``should_stop`` is checked between classes like a real method."""
        from retinaview.core.common.errors import Cancelled

        t0 = time.perf_counter()
        n = model.input_size
        display = _square(image, n)
        self.explained.append(image.shape[:2])
        ex = fake_explanation(display, image.shape[:2], method)
        if not self.progressive:
            if self.delay:
                time.sleep(self.delay)
            ex.seconds = time.perf_counter() - t0
            return ex
        c = len(ex.logits)
        order = [ex.grade, *(k for k in range(c) if k != ex.grade)]
        for i in range(1, c + 1):
            if self.delay:
                time.sleep(self.delay / c)
            if i == c:
                break
            if on_partial is not None:
                on_partial(_only(ex, order[:i], time.perf_counter() - t0))
            if should_stop is not None and should_stop():
                raise Cancelled("explanation no longer wanted")
        ex.params = {"classes": order}
        ex.classes = tuple(order)
        ex.seconds = time.perf_counter() - t0
        return ex


class HeldBackend:
    """A backend whose first explanation is held until `release` is set (deterministic stale-result tests).

    The held explanation ignores ``should_stop``, like a method that cannot stop part-way: its result does
    reach the engine after newer requests were sent, so only the engine's generation filter keeps it off the
    screen. ``calls`` records the top-left red value of each explained image (tests mark images with it).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[int] = []

    def load(self, name: str):
        return self.inner.load(name)

    def predict(self, model: Any, image: np.ndarray) -> np.ndarray:
        return self.inner.predict(model, image)

    def explain(self, model, image, method, params, on_partial=None, should_stop=None):
        self.calls.append(int(image[0, 0, 0]))
        if len(self.calls) == 1:
            self.started.set()
            if not self.release.wait(30):
                raise TimeoutError("the held explanation was never released")
            return self.inner.explain(model, image, method, params)
        return self.inner.explain(model, image, method, params, on_partial, should_stop)


def _only(ex: Explanation, classes: list[int], seconds: float) -> Explanation:
    """A copy of ``ex`` with the maps of the classes not in ``classes`` set to NaN (a partial result)."""
    todo = [k for k in range(len(ex.logits)) if k not in classes]

    def nan(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.result_type(a.dtype, np.float32), copy=True)
        a[todo] = np.nan
        return a

    layers = [replace(r, si=nan(r.si), sk=nan(r.sk)) for r in ex.layers]
    return replace(
        ex,
        maps=nan(ex.maps),
        extra_maps={k: nan(v) for k, v in ex.extra_maps.items()},
        bias=nan(ex.bias),
        layers=layers,
        features=nan(ex.features),
        feature_maps=None,
        params={"classes": list(classes)},
        classes=tuple(classes),
        seconds=seconds,
    )


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


# (name, rf, pooling factor) of the fake model's explained layers, input to output: a small CNN's geometry,
# so the layer inspector has layers of different resolutions, receptive fields and jumps to show.
FAKE_LAYERS = (("conv1", 3, 1), ("conv2", 8, 2), ("conv3", 20, 4), ("conv4", 44, 8))
FAKE_FEATURES = 8


def _pool(a: np.ndarray, f: int) -> np.ndarray:
    """(..., n, n) -> (..., n // f, n // f) block sums (mass kept for the part that divides evenly)."""
    if f == 1:
        return a
    h, w = a.shape[-2] // f, a.shape[-1] // f
    a = a[..., : h * f, : w * f]
    return a.reshape(*a.shape[:-2], h, f, w, f).sum((-3, -1))


def _with_sum(maps: np.ndarray, sums: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Shift each class map inside ``where`` so that it sums to ``sums[c]`` exactly."""
    out = maps.copy()
    count = max(int(where.sum()), 1)
    for k in range(len(sums)):
        out[k][where] += (sums[k] - out[k].sum()) / count
    return out


def fake_explanation(
    display: np.ndarray, photo_hw: tuple[int, int], method: str = "rfscore", seconds: float = 0.0
) -> Explanation:
    """An `Explanation` of a square (n, n, 3) uint8 image with exact conservation at every layer cut.

    Four explained layers (`FAKE_LAYERS`), per-layer S_i and S_k, feature scores of the last layer and the
    total map assembled like the real method (input + every S_k mapped with the Gaussian prior + bias).
    """
    from retinaview.core.common.gaussian_rf import spread_constant
    from retinaview.engine.layers import map_maps

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
    pattern = np.empty((c, n, n))
    for k in range(c):
        p = _blur(detail * (k - 2) * 4 + red * 0.3 * np.cos(k) + 0.2 * waves * (k - 1.5), 2)
        pattern[k] = np.where(fov, p, 0.0)

    # Hidden-space maps, layer by layer: S_k small and smooth, S_i the image pattern pooled to the layer's
    # grid, shifted so that sum S_i(l) + sum of the S_k above l + bias = logit (the cut at l).
    grids = []
    sk_list = []
    for li, (_name, rf, f) in enumerate(FAKE_LAYERS):
        h = max(n // f, 1)
        gy, gx = np.mgrid[0:h, 0:h]
        inside = _pool(fov.astype(np.float64), f) > 0
        sk = np.stack(
            [
                np.where(inside, 0.02 * f * np.sin(gy / h * (3 + k + li)) * np.cos(gx / h * 2), 0.0)
                for k in range(c)
            ]
        )
        grids.append((h, rf, f, inside))
        sk_list.append(sk)
    sk_sums = np.stack([sk.reshape(c, -1).sum(1) for sk in sk_list])
    above = np.cumsum(sk_sums[::-1], 0)[::-1]  # above[l] = sum of S_k of layers l..L
    layers = []
    feature_maps = None
    for li, ((name, rf, f), (h, _, _, inside)) in enumerate(zip(FAKE_LAYERS, grids, strict=True)):
        after = above[li + 1] if li + 1 < len(FAKE_LAYERS) else np.zeros(c)
        target = logits - bias - after
        if li == len(FAKE_LAYERS) - 1:
            chans = np.stack(
                [
                    np.roll(_pool(pattern, f), j, axis=-1) * (1 + 0.3 * np.cos(j))
                    for j in range(FAKE_FEATURES)
                ],
                1,
            )
            chans = np.where(inside, chans, 0.0)
            count = max(int(inside.sum()), 1) * FAKE_FEATURES
            for k in range(c):
                chans[k][:, inside] += (target[k] - chans[k].sum()) / count
            feature_maps = chans
            si = chans.sum(1)
        else:
            si = _with_sum(_pool(pattern, f), target, inside)
        offset = (f - 1) / 2
        layers.append(
            LayerRecord(
                name=name,
                si=si,
                sk=sk_list[li],
                rf=rf,
                jump=f,
                offset=(offset, offset),
                shape=(16 * (li + 1), h, h),
            )
        )
    inp = _with_sum(pattern, logits - bias - above[0], fov)
    total = inp.copy()
    for layer in layers:
        total += map_maps(layer.sk, layer.rf, layer.jump, layer.offset, (n, n))
    total += spread_constant(bias, (n, n))
    e = np.exp(logits - logits.max())
    ex = Explanation(
        method=method,
        logits=logits,
        probs=e / e.sum(),
        maps=total.astype(np.float32),
        fov=fov,
        map_kind="total",
        extra_maps={"input": inp.astype(np.float32)},
        differences={"constant": ("total", "input")},
        check_name="conservation residual",
        bias=bias,
        layers=layers,
        features=feature_maps.sum((2, 3)),
        feature_maps=feature_maps,
        class_names=CLASS_NAMES,
        display=display,
        geometry=SquareGeometry(tuple(photo_hw), n),
        seconds=seconds,
    )
    ex.check = ex.residual()
    if method != "rfscore":
        # Any other method: its one map (the input-dependent pattern), checked by completeness like
        # integrated gradients: the map sums to the logit minus the bias and the layers' constants.
        ex = Explanation(
            method=method,
            logits=logits,
            probs=ex.probs,
            maps=inp.astype(np.float32),
            fov=fov,
            map_kind="map",
            check_name="completeness error",
            check=0.0,
            class_names=CLASS_NAMES,
            display=display,
            geometry=SquareGeometry(tuple(photo_hw), n),
            seconds=seconds,
        )
    return ex
