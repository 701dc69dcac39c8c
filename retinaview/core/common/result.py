"""The result of explaining one image: plain numpy arrays, ready for the GUI, the CLI's npz and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LayerRecord:
    """One explained layer, hidden space.

    ``si``: (C, h, w) score at the layer's output activation (lambda * a summed over channels) per class.
    ``sk``: (C, h, w) the layer's constant part (S_k) per class. ``rf``, ``jump``, ``offset``: receptive field
    size, jump and centre of unit (0, 0), in input pixels (offset as (y, x)).
    """

    name: str
    si: np.ndarray
    sk: np.ndarray
    rf: int
    jump: int
    offset: tuple[float, float]
    shape: tuple[int, ...] = ()

    @property
    def hw(self) -> tuple[int, int]:
        return self.si.shape[-2], self.si.shape[-1]


@dataclass
class Explanation:
    """Everything one explanation of one image gives, at model input resolution.

    ``input``: (C, H, W) input-dependent map (x * df_c/dx summed over RGB). ``total``: (C, H, W) input map plus
    every layer's S_k and the bias spread to input space; ``total[c].sum() == logits[c]``.
    ``fov``: (H, W) bool. ``display``: (H, W, 3) uint8 of the model's view of the photograph.
    ``features``: (C, F) feature scores w_cj * f_j at the classifier's input (paper17's layer 16), or None.
    ``feature_maps``: (C, F, h, w) where each feature's score sits on the last explained layer's grid
    (``feature_maps[c, j].sum() == features[c, j]``; for an average-pooled model a_j * w_cj / (h * w)), or None.
    """

    method: str
    logits: np.ndarray
    probs: np.ndarray
    bias: np.ndarray
    input: np.ndarray
    total: np.ndarray | None
    fov: np.ndarray
    layers: list[LayerRecord] = field(default_factory=list)
    features: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    display: np.ndarray | None = None
    geometry: Any = None
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    feature_maps: np.ndarray | None = None

    @property
    def grade(self) -> int:
        return int(np.argmax(self.logits))

    def residual(self) -> float:
        """Conservation error: |sum(input) + sum S_k + bias - logit|, relative to the L1 norm of the parts.

        The worst class and the worst layer cut; 0 for methods without a decomposition.
        """
        if not self.layers:
            return 0.0
        sk_sums = np.stack([layer.sk.reshape(len(self.logits), -1).sum(1) for layer in self.layers])
        sk_l1 = np.stack(
            [np.abs(layer.sk).reshape(len(self.logits), -1).sum(1) for layer in self.layers]
        )
        in_sum = self.input.reshape(len(self.logits), -1).sum(1)
        scale = np.abs(self.input).reshape(len(self.logits), -1).sum(1) + sk_l1.sum(0)
        scale = scale + np.abs(self.bias) + np.abs(self.logits)
        worst = np.abs(in_sum + sk_sums.sum(0) + self.bias - self.logits)
        for k, layer in enumerate(self.layers):
            cut = (
                layer.si.reshape(len(self.logits), -1).sum(1) + sk_sums[k + 1 :].sum(0) + self.bias
            )
            worst = np.maximum(worst, np.abs(cut - self.logits))
        return float(np.max(worst / np.maximum(scale, np.finfo(np.float64).tiny)))

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        """The arrays of ``retinaview explain``'s npz file, by the names documented in the README."""
        out: dict[str, np.ndarray] = {
            "logits": self.logits,
            "probs": self.probs,
            "bias": self.bias,
            "input": self.input,
            "fov": self.fov,
            "layers": np.array([layer.name for layer in self.layers]),
            "class_names": np.array(self.class_names),
        }
        if self.total is not None:
            out["total"] = self.total
        if self.features is not None:
            out["features"] = self.features
        if self.feature_maps is not None:
            out["feature_maps"] = self.feature_maps
        for k, layer in enumerate(self.layers):
            out[f"si_{k}"] = layer.si
            out[f"sk_{k}"] = layer.sk
            out[f"rf_{k}"] = np.array(layer.rf)
            out[f"jump_{k}"] = np.array(layer.jump)
            out[f"offset_{k}"] = np.array(layer.offset)
        return out
