"""The result of explaining one image: plain numpy arrays, ready for the GUI, the CLI's npz and tests.

An `Explanation` is method-neutral: every method gives one map per class at the model's input resolution
(``maps``), a probability per class and its own correctness check as one named figure (``check_name``,
``check``: rfscore's conservation residual, integrated gradients' completeness error, CAM's identity error).
The parts that only a decomposition has (per-layer maps, output bias, classifier features) are optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The name of a method's map when it has only one kind.
MAP_KIND = "map"


@dataclass
class LayerRecord:
    """One explained layer of a decomposition, hidden space.

    Attributes
    ----------
    name : str
        The layer's module name.
    si : numpy.ndarray
        (C, h, w) score at the layer's output activation (lambda * a summed over channels) per class.
    sk : numpy.ndarray
        (C, h, w) the layer's constant part (S_k) per class.
    rf, jump : int
        Receptive field size and jump of the layer's units, in input pixels.
    offset : tuple of float
        Centre (y, x) of unit (0, 0), in input pixels.
    shape : tuple of int
        The layer's activation shape (channels, h, w), when known.
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
        """(h, w) of the layer's grid."""
        return self.si.shape[-2], self.si.shape[-1]


@dataclass
class Explanation:
    """Everything one explanation of one image gives, at model input resolution.

    Attributes
    ----------
    method : str
        The method's registered name; set by the method itself.
    logits, probs : numpy.ndarray
        (C,) class scores before softmax and the probabilities.
    maps : numpy.ndarray
        (C, H, W) the method's map of each class (rfscore: ``total``, whose sum is the logit). Rows of classes
        not computed (see ``classes``) are NaN.
    fov : numpy.ndarray
        (H, W) bool field of view.
    map_kind : str
        The name of ``maps`` among the map kinds (rfscore: ``"total"``; a method with one map: ``"map"``).
    extra_maps : dict of str to numpy.ndarray
        Further stored kinds, (C, H, W) each (rfscore: ``{"input": x * df_c/dx summed over RGB}``).
    differences : dict of str to (str, str)
        Kinds derived on demand as the difference of two kinds, so they cost no memory
        (rfscore: ``{"constant": ("total", "input")}``).
    check_name : str
        What ``check`` measures, e.g. ``"conservation residual"``, ``"completeness error"``; empty if none.
    check : float
        The method's own check, relative error (0 is exact); NaN when the method has none.
    classes : tuple of int
        The classes whose maps are computed, in the order they were computed; empty means all.
    bias : numpy.ndarray or None
        (C,) decompositions only: every constant after the last explained layer (paper17: the output bias).
    layers : list of LayerRecord
        Decompositions only: the explained layers, input to output.
    features : numpy.ndarray or None
        (C, F) feature scores ``w_cj * f_j`` at the classifier's input (paper17's layer 16).
    feature_maps : numpy.ndarray or None
        (C, F, h, w) where each feature's score sits on the last explained layer's grid
        (``feature_maps[c, j].sum() == features[c, j]``; for an average-pooled head ``a_j * w_cj / (h * w)``).
    class_names : tuple of str
        One name per class.
    display : numpy.ndarray or None
        (H, W, 3) uint8 of the model's view of the photograph.
    geometry : object
        The preprocessing geometry (``geometry.to_photo(map2d)`` puts a map back onto the photograph).
    seconds : float
        Wall time of the explanation.
    params : dict
        The method's parameters (JSON-serialisable).
    """

    method: str
    logits: np.ndarray
    probs: np.ndarray
    maps: np.ndarray
    fov: np.ndarray
    map_kind: str = MAP_KIND
    extra_maps: dict[str, np.ndarray] = field(default_factory=dict)
    differences: dict[str, tuple[str, str]] = field(default_factory=dict)
    check_name: str = ""
    check: float = float("nan")
    classes: tuple[int, ...] = ()
    bias: np.ndarray | None = None
    layers: list[LayerRecord] = field(default_factory=list)
    features: np.ndarray | None = None
    feature_maps: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    display: np.ndarray | None = None
    geometry: Any = None
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def grade(self) -> int:
        """The predicted class."""
        return int(np.argmax(self.logits))

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every map kind this explanation has, the method's own map first."""
        return (self.map_kind, *self.extra_maps, *self.differences)

    def kind(self, name: str) -> np.ndarray:
        """The (C, H, W) maps of kind ``name`` (one of `kinds`).

        Raises
        ------
        KeyError
            When the explanation has no such kind.
        """
        if name == self.map_kind:
            return self.maps
        if name in self.extra_maps:
            return self.extra_maps[name]
        if name in self.differences:
            a, b = self.differences[name]
            return self.kind(a) - self.kind(b)
        raise KeyError(f"{self.method} has no {name!r} maps (it has {', '.join(self.kinds)})")

    @property
    def total(self) -> np.ndarray | None:
        """rfscore's total map (every part in input space; ``total[c].sum() == logits[c]``), else None."""
        return self.maps if self.map_kind == "total" else None

    @property
    def input(self) -> np.ndarray | None:
        """rfscore's input-dependent map ``x * df_c/dx`` summed over RGB, else None."""
        return self.maps if self.map_kind == "input" else self.extra_maps.get("input")

    def residual(self) -> float:
        """Conservation error of a decomposition, relative to the L1 norm of its parts.

        |sum(input) + sum S_k + bias - logit| at the input and at every explained layer's cut, the worst class
        (of those computed) and the worst cut; 0 for an explanation without a decomposition.

        Returns
        -------
        float
            The relative error; float precision is ~1e-7 (float32) or ~1e-15 (float64).
        """
        if not self.layers or self.input is None or self.bias is None:
            return 0.0
        n = len(self.logits)
        rows = list(self.classes) if self.classes else list(range(n))
        inp = self.input[rows].reshape(len(rows), -1)
        sk = [layer.sk[rows].reshape(len(rows), -1) for layer in self.layers]
        si = [layer.si[rows].reshape(len(rows), -1) for layer in self.layers]
        logits, bias = self.logits[rows], self.bias[rows]
        sk_sums = np.stack([m.sum(1) for m in sk])
        scale = np.abs(inp).sum(1) + sum(np.abs(m).sum(1) for m in sk)
        scale = scale + np.abs(bias) + np.abs(logits)
        worst = np.abs(inp.sum(1) + sk_sums.sum(0) + bias - logits)
        for k, layer_si in enumerate(si):
            cut = layer_si.sum(1) + sk_sums[k + 1 :].sum(0) + bias
            worst = np.maximum(worst, np.abs(cut - logits))
        return float(np.max(worst / np.maximum(scale, np.finfo(np.float64).tiny)))

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        """The arrays of ``retinaview explain``'s npz file, by the names documented in the README.

        Every stored map kind is saved under its own name (rfscore: ``total`` and ``input``; a method with one
        map: ``map``); ``map_kind`` names the method's own map among them.
        """
        out: dict[str, np.ndarray] = {
            "method": np.array(self.method),
            "logits": self.logits,
            "probs": self.probs,
            "fov": self.fov,
            "map_kind": np.array(self.map_kind),
            self.map_kind: self.maps,
            "check_name": np.array(self.check_name),
            "check": np.array(self.check),
            "class_names": np.array(self.class_names),
        }
        out.update(self.extra_maps)
        if self.bias is not None:
            out["bias"] = self.bias
        if self.layers:
            out["layers"] = np.array([layer.name for layer in self.layers])
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


def class_order(predicted: int, n_classes: int, classes: Any = None) -> list[int]:
    """The classes to explain, in the order to explain them.

    Parameters
    ----------
    predicted : int
        The predicted class.
    n_classes : int
        How many classes the model has.
    classes : None, "predicted" or sequence of int
        None: every class, the predicted one first; ``"predicted"``: that class alone; a sequence: as given.

    Returns
    -------
    list of int
    """
    if classes is None:
        return [predicted, *[c for c in range(n_classes) if c != predicted]]
    if isinstance(classes, str):
        if classes != "predicted":
            raise ValueError(
                f"classes must be None, 'predicted' or a sequence of ints, not {classes!r}"
            )
        return [predicted]
    order = [int(c) for c in classes]
    bad = [c for c in order if not 0 <= c < n_classes]
    if bad:
        raise ValueError(f"classes {bad} out of range for a model of {n_classes} classes")
    return order
