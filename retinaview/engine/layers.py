"""The layer inspector's numbers and maps, from one `Explanation` (numpy only; no Qt, no torch).

Layers are numbered as in the paper: 0 is the input, 1..L the explained layers from the input up, and L + 1
the classifier's input features when the explanation has them (paper17's layer 16). Everything here comes
from the hidden-space maps of the single decomposition the engine computed; mapping a layer to input space
(`map_layer`) is the only costly step and runs in the inspector's mapping thread, once per layer, cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from retinaview.core.common.gaussian_rf import DEFAULT_SIGMA_FACTOR, gaussian_matrix, map_to_input
from retinaview.engine.prepare import PreparedMaps, prepare_maps

INPUT_LAYER = 0
SPACES = ("input", "hidden")


@dataclass(frozen=True)
class LayerRow:
    """One row of the layer table, all sums per class (C,), in logit units.

    ``si_sum``: sum of S_i (for the input: of the input-dependent map; for the features: of the feature
    scores). ``sk_sum``: sum of the layer's constant S_k (NaN where a layer has none). ``residual``: the
    conservation error at this cut, sum S_i + the S_k of every layer above + bias - logit.
    ``offset``: (y, x) centre of unit (0, 0) in input pixels.
    """

    number: int
    name: str
    shape: tuple[int, ...]
    rf: int
    jump: int
    offset: tuple[float, float]
    si_sum: np.ndarray
    sk_sum: np.ndarray
    residual: np.ndarray

    @property
    def label(self) -> str:
        return "input" if self.number == INPUT_LAYER else f"{self.number} · {self.name}"

    def share(self, logits: np.ndarray) -> np.ndarray:
        """S_k of the layer as a share of each class's logit (S_i for the input and the features)."""
        part = self.si_sum if np.isnan(self.sk_sum).all() else self.sk_sum
        with np.errstate(divide="ignore", invalid="ignore"):
            return part / logits


def _sums(maps: np.ndarray) -> np.ndarray:
    return np.asarray(maps, dtype=np.float64).reshape(maps.shape[0], -1).sum(1)


def feature_number(ex) -> int | None:
    """The layer number of the classifier's input features, or None when the explanation has none."""
    return len(ex.layers) + 1 if ex.features is not None and ex.layers else None


def layer_numbers(ex) -> list[int]:
    """Every layer number of the explanation, input first."""
    numbers = list(range(len(ex.layers) + 1))
    features = feature_number(ex)
    if features is not None:
        numbers.append(features)
    return numbers


def layer_rows(ex) -> list[LayerRow]:
    """The table: one row per layer number, input first."""
    logits = np.asarray(ex.logits, dtype=np.float64)
    bias = np.asarray(ex.bias, dtype=np.float64)
    n = len(logits)
    sk = [_sums(layer.sk) for layer in ex.layers]
    above = [np.sum(sk[k:], axis=0) if sk[k:] else np.zeros(n) for k in range(len(sk) + 1)]
    nan = np.full(n, np.nan)
    size = tuple(ex.input.shape[-2:])
    in_sum = _sums(ex.input)
    rows = [
        LayerRow(
            0, "input", (3, *size), 1, 1, (0.0, 0.0), in_sum, nan, in_sum + above[0] + bias - logits
        )
    ]
    for k, layer in enumerate(ex.layers):
        si = _sums(layer.si)
        rows.append(
            LayerRow(
                k + 1,
                layer.name,
                tuple(layer.shape) or tuple(layer.si.shape[1:]),
                int(layer.rf),
                int(layer.jump),
                (float(layer.offset[0]), float(layer.offset[1])),
                si,
                sk[k],
                si + above[k + 1] + bias - logits,
            )
        )
    number = feature_number(ex)
    if number is not None:
        last = rows[-1]
        feats = np.asarray(ex.features, dtype=np.float64)
        fs = feats.sum(1)
        rows.append(
            LayerRow(
                number,
                "features",
                (feats.shape[1],),
                last.rf,
                last.jump,
                last.offset,
                fs,
                nan,
                fs + bias - logits,
            )
        )
    return rows


@dataclass(frozen=True)
class Waterfall:
    """How each logit is built: ``parts`` (C, P) named by ``labels`` add up, with ``residual``, to ``logits``.

    Parts: the input-dependent map, the S_k of every explained layer from the input up, and the bias.
    """

    labels: tuple[str, ...]
    parts: np.ndarray
    logits: np.ndarray

    @property
    def residual(self) -> np.ndarray:
        return self.logits - self.parts.sum(1)


def waterfall(ex) -> Waterfall:
    cols = [_sums(ex.input)] + [_sums(layer.sk) for layer in ex.layers]
    cols.append(np.asarray(ex.bias, dtype=np.float64))
    labels = ("input", *(str(k + 1) for k in range(len(ex.layers))), "bias")
    return Waterfall(labels, np.stack(cols, 1), np.asarray(ex.logits, dtype=np.float64))


def hidden_maps(
    ex, number: int, feature: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(S_i, S_k) of a layer in its own space, (C, h, w) each; S_k is None where the layer has none.

    For the input, S_k is every constant spread to input space (total - input). For the features layer,
    S_i is feature ``feature``'s score on the last layer's grid (None: all features, i.e. the last S_i).
    """
    if number == INPUT_LAYER:
        sk = None if ex.total is None else ex.total - ex.input
        return ex.input, sk
    if number == feature_number(ex):
        if ex.feature_maps is None:
            return ex.layers[-1].si, None
        if feature is None:
            return ex.feature_maps.sum(1), None
        return ex.feature_maps[:, feature], None
    layer = ex.layers[number - 1]
    return layer.si, layer.sk


def geometry(ex, number: int) -> tuple[int, int, tuple[float, float]]:
    """(rf, jump, (offset_y, offset_x)) of a layer number in input pixels."""
    if number == INPUT_LAYER:
        return 1, 1, (0.0, 0.0)
    layer = ex.layers[min(number, len(ex.layers)) - 1]
    return int(layer.rf), int(layer.jump), (float(layer.offset[0]), float(layer.offset[1]))


def map_maps(
    maps: np.ndarray,
    rf: float,
    jump: float,
    offset: tuple[float, float],
    size: tuple[int, int],
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
) -> np.ndarray:
    """(C, h, w) hidden maps -> (C, H, W) float32 in input space with the Gaussian RF prior.

    `retinaview.core.common.gaussian_rf.map_to_input` (the explanation's own mapping, every map keeps its
    sum) on float32 maps, with classes not computed yet (NaN) as zeros.
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    if tuple(maps.shape[-2:]) == tuple(size) and rf <= 1:
        return maps.copy()
    return map_to_input(maps, rf, jump, offset, size, sigma_factor)


def map_value(
    maps: np.ndarray,
    rf: float,
    jump: float,
    offset: tuple[float, float],
    size: tuple[int, int],
    y: int,
    x: int,
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
) -> np.ndarray:
    """(C,) values of the mapped maps at input pixel (y, x), without mapping the whole layer."""
    c, h, w = maps.shape
    gy = gaussian_matrix(h, size[0], rf, jump, offset[0], sigma_factor)[y]
    gx = gaussian_matrix(w, size[1], rf, jump, offset[1], sigma_factor)[x]
    return np.einsum("h,chw,w->c", gy, np.nan_to_num(maps.astype(np.float64)), gx)


def unit_at(ex, number: int, y: float, x: float) -> tuple[int, int]:
    """The unit (i, j) of a layer whose field is centred nearest to input pixel (y, x)."""
    _rf, jump, (oy, ox) = geometry(ex, number)
    si, _ = hidden_maps(ex, number)
    h, w = si.shape[-2:]
    i = int(np.clip(round((y - oy) / jump), 0, h - 1))
    j = int(np.clip(round((x - ox) / jump), 0, w - 1))
    return i, j


def unit_prior(
    ex, number: int, i: int, j: int, size: tuple[int, int], sigma_factor: float | None = None
) -> tuple[tuple[float, float, float, float], np.ndarray, tuple[int, int]]:
    """A unit's receptive field and Gaussian prior.

    Returns ``(rect, weights, origin)``: rect (y0, x0, height, width) of the field in input pixels (pixel
    edges, not clipped to the image), and the (h, w) prior weights over the part of the image the field
    covers, whose top-left pixel is ``origin`` (y, x); the weights sum to 1.
    """
    sf = sigma_factor or ex.params.get("sigma_factor", DEFAULT_SIGMA_FACTOR)
    rf, jump, (oy, ox) = geometry(ex, number)
    si, _ = hidden_maps(ex, number)
    h, w = si.shape[-2:]
    cy, cx = oy + jump * i, ox + jump * j
    rect = (cy - (rf - 1) / 2 - 0.5, cx - (rf - 1) / 2 - 0.5, float(rf), float(rf))
    wy = gaussian_matrix(h, size[0], rf, jump, oy, sf)[:, i]
    wx = gaussian_matrix(w, size[1], rf, jump, ox, sf)[:, j]
    ys, xs = np.nonzero(wy)[0], np.nonzero(wx)[0]
    if not len(ys) or not len(xs):
        return rect, np.zeros((0, 0)), (0, 0)
    weights = np.outer(wy[ys[0] : ys[-1] + 1], wx[xs[0] : xs[-1] + 1])
    return rect, weights, (int(ys[0]), int(xs[0]))


@dataclass
class LayerMaps:
    """One layer's maps ready to draw, for every class.

    ``si`` / ``sk``: prepared index images (``sk`` None where the layer has none). ``si_sum`` / ``sk_sum``:
    (C,) sums of the float maps that were drawn (mass is conserved by the mapping, so they equal the table's).
    ``grid``: (a_y, b_y, a_x, b_x), map pixel index -> model input pixel index (y = a_y * i + b_y).
    """

    number: int
    space: str
    feature: int | None
    si: PreparedMaps
    sk: PreparedMaps | None
    si_sum: np.ndarray
    sk_sum: np.ndarray | None
    grid: tuple[float, float, float, float]
    seconds: float = 0.0

    def nbytes(self) -> int:
        return self.si.nbytes() + (self.sk.nbytes() if self.sk is not None else 0)


def map_layer(ex, number: int, space: str, feature: int | None = None) -> LayerMaps:
    """Map (``space="input"``) or keep (``"hidden"``) one layer's S_i and S_k and prepare them for drawing."""
    import time

    t0 = time.perf_counter()
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, not {space!r}")
    si, sk = hidden_maps(ex, number, feature)
    rf, jump, offset = geometry(ex, number)
    size = tuple(ex.input.shape[-2:])
    sf = ex.params.get("sigma_factor", DEFAULT_SIGMA_FACTOR)
    if number == INPUT_LAYER:
        space = "input"
    if space == "input":
        fov = ex.fov
        if number != INPUT_LAYER:
            si = map_maps(si, rf, jump, offset, size, sf)
            sk = None if sk is None else map_maps(sk, rf, jump, offset, size, sf)
        grid = (1.0, 0.0, 1.0, 0.0)
    else:
        fov = None
        grid = (float(jump), offset[0], float(jump), offset[1])
    si = np.nan_to_num(np.asarray(si, dtype=np.float32))
    sk = None if sk is None else np.nan_to_num(np.asarray(sk, dtype=np.float32))
    return LayerMaps(
        number=number,
        space=space,
        feature=feature,
        si=prepare_maps(si, fov),
        sk=None if sk is None else prepare_maps(sk, fov),
        si_sum=_sums(si),
        sk_sum=None if sk is None else _sums(sk),
        grid=grid,
        seconds=time.perf_counter() - t0,
    )


def walk_order(ex) -> list[int]:
    """The walk-through: from the output layer down to the input (the features first when present)."""
    return list(reversed(layer_numbers(ex)))


def top_feature(ex, c: int) -> int | None:
    """The feature with the largest |score| for class ``c``."""
    if ex.features is None:
        return None
    row = np.nan_to_num(np.asarray(ex.features[c], dtype=np.float64))
    return int(np.argmax(np.abs(row)))


def format_shape(shape: tuple[int, ...]) -> str:
    return " × ".join(str(int(v)) for v in shape)


def finite(v: float) -> bool:
    return isinstance(v, (int, float, np.floating)) and math.isfinite(float(v))
