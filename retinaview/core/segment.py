"""Vessel segmentation of one photograph: the model's per-pixel vessel logit and probability.

The photograph goes through the model's preprocessing chain (``vessels`` for DRIU) at its input size, one
forward pass gives a logit per pixel, and `Segmentation.on_photo` maps the probability back onto the
photograph with the chain's geometry. The CLI (``retinaview segment``), the engine and tests call this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from retinaview.core.common.errors import CheckpointError
from retinaview.core.common.geometry import Geometry
from retinaview.core.models.inputs import to_input

BUNDLED_VESSEL_MODEL = (
    Path(__file__).resolve().parents[2] / "resources" / "models" / "driu_synthetic.pt"
)


@dataclass
class Segmentation:
    """Vessel segmentation of one photograph, at model resolution.

    ``logits``, ``probability``: (S, S) float32; ``fov``: (S, S) bool; ``display``: (S, S, 3) uint8 of what
    the model saw; ``geometry`` maps model pixels to the photograph; ``seconds``: wall time of the call.
    """

    logits: np.ndarray
    probability: np.ndarray
    fov: np.ndarray
    display: np.ndarray
    geometry: Geometry
    seconds: float = 0.0
    threshold: float = 0.5

    def on_photo(self) -> np.ndarray:
        """The vessel probability on the photograph's pixel grid, (H, W) float32 in [0, 1]."""
        return self.geometry.to_photo(self.probability, order=1).astype(np.float32)

    def area_fraction(self, threshold: float | None = None) -> float:
        """Share of the field of view called vessel (probability above ``threshold``, by default the
        model's own, chosen on its validation set)."""
        threshold = self.threshold if threshold is None else threshold
        n = int(self.fov.sum())
        return float((self.probability[self.fov] > threshold).sum() / n) if n else 0.0


def check_vessel_model(model: nn.Module) -> None:
    """One line when ``model`` is not a vessel segmentation model (one output map)."""
    spec = model.spec
    if spec.num_classes != 1 or spec.config.get("task", "vessels") != "vessels":
        raise CheckpointError(
            f"{spec.source or spec.arch}: a {spec.arch} grader with {spec.num_classes} classes, "
            "not a vessel segmentation model (use --model with a driu checkpoint)"
        )


def load_vessel_model(name_or_path: str = "default", device: Any = None) -> nn.Module:
    """The bundled vessel model for ``"default"``, else what `load_model` makes of the name or path."""
    from retinaview.core.model_loading import load_model

    if name_or_path == "default":
        if not BUNDLED_VESSEL_MODEL.is_file():
            raise CheckpointError(
                f"{BUNDLED_VESSEL_MODEL.name}: no bundled vessel model in this copy of retinaview; "
                "train one with `retinaview train --task vessels` and pass it with --model"
            )
        name_or_path = str(BUNDLED_VESSEL_MODEL)
    model = load_model(name_or_path, device=device)
    check_vessel_model(model)
    return model


def segment(model: nn.Module, image: Any) -> Segmentation:
    """Segment the vessels of one photograph (a path, PIL image, uint8 array or `Preprocessed`)."""
    from retinaview.core.preprocess import Preprocessed, preprocess

    t0 = time.perf_counter()
    check_vessel_model(model)
    spec = model.spec
    pre = (
        image
        if isinstance(image, Preprocessed)
        else preprocess(image, spec.preprocessing, spec.input_size)
    )
    x = to_input(model, pre.image)
    with torch.no_grad():
        logits = model(x)[0, 0].double()
    prob = torch.sigmoid(logits)
    return Segmentation(
        logits=logits.float().cpu().numpy(),
        probability=prob.float().cpu().numpy(),
        fov=pre.fov,
        display=pre.display,
        geometry=pre.geometry,
        seconds=time.perf_counter() - t0,
        threshold=float(spec.config.get("threshold", 0.5)),
    )
