"""What the GUI asks the engine for and what comes back: plain data, numpy arrays, no torch.

A request names the image (a file or an array), the model, the explanation method and its parameters, so
other methods plug in without changing the engine. Each request gets a generation number; only the newest
one runs and only its result is delivered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retinaview.core.common.result import Explanation
from retinaview.engine.prepare import PreparedMaps

# The explanation methods `retinaview.core.explain.methods.METHODS` registers, in the order a menu offers
# them; named here so that the window lists them without importing torch (a test checks they agree).
METHOD_NAMES = (
    "rfscore",
    "saliency",
    "gradxinput",
    "ig",
    "layer_ig",
    "ig_counterfactual",
    "cam",
    "gradcam",
    "contrast",
)
MODELS_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"


def bundled_models() -> list[Path]:
    """The model files that ship with retinaview (``resources/models/*.pt``), by name."""
    return sorted(MODELS_DIR.glob("*.pt")) if MODELS_DIR.is_dir() else []


# The view of the main window's overlay; other views (a grid comparing methods) use names of their own.
MAIN_VIEW = "main"


@dataclass(frozen=True)
class ExplainRequest:
    """Explain one image.

    ``image``: a file path or an (H, W, 3) uint8 array. ``method``: a name from ``core.api.METHODS``.
    ``params``: keyword arguments of the method (JSON-serialisable, they are part of the cache key).
    ``keep_layers``: keep the per-layer maps (the layer inspector needs them; the overlay does not, and they
    are most of a result's memory). ``generation``: the engine's number of the request, unique across views.
    ``view``: where the maps are shown; each view's newest request wins.
    """

    image: Path | np.ndarray
    method: str = "rfscore"
    params: dict[str, Any] = field(default_factory=dict)
    keep_layers: bool = False
    generation: int = 0
    view: str = MAIN_VIEW

    @property
    def path(self) -> Path | None:
        return self.image if isinstance(self.image, Path) else None

    @property
    def label(self) -> str:
        return self.image.name if isinstance(self.image, Path) else "<array>"

    def params_key(self) -> str:
        return json.dumps(self.params, sort_keys=True, default=str)


def array_digest(image: np.ndarray) -> str:
    """Content hash of an in-memory image (shape, dtype and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


@dataclass
class ModelInfo:
    """The model the engine holds: ``model_id`` changes whenever the weights can differ; ``task`` says which
    operations it offers (``"grading"``: probabilities and explanations; ``"vessels"``: segmentation)."""

    model_id: str
    arch: str
    source: str
    class_names: tuple[str, ...]
    device: str
    input_size: int
    seconds: float = 0.0
    task: str = "grading"


@dataclass
class ExplainResult:
    """One explained image, ready to draw.

    ``photo``: (H, W, 3) uint8 photograph the maps are drawn on. ``to_photo``: (a_y, b_y, a_x, b_x), the
    affine map from a model-input pixel index to a photograph pixel index (y_photo = a_y * y + b_y).
    ``maps``: prepared maps per kind the method declares (``explanation.kinds``: rfscore's ``total``,
    ``input``, ``constant``; one ``map`` for most others). ``explanation``: the core's `Explanation` with
    float32 maps (layers only when the request kept them). ``residual``: the method's own check
    (``explanation.check``, named by ``explanation.check_name``; rfscore: the conservation residual).
    ``partial``: only the classes in ``done`` are computed yet (the others are NaN, their prepared maps
    empty, ``residual`` NaN); a partial result is shown while the final one is computed, and is never cached.
    ``key``: the cache key; its first element is the image's content digest (`digest`).
    """

    request: ExplainRequest
    key: tuple[str, ...]
    photo: np.ndarray
    to_photo: tuple[float, float, float, float]
    maps: dict[str, PreparedMaps]
    explanation: Explanation
    residual: float
    model: ModelInfo
    seconds: float
    cached: bool = False
    partial: bool = False
    done: tuple[int, ...] = ()
    # The model-free quality gate's verdict of the photograph (``gradable`` or ``ungradable: <reason>``) and
    # its sentence; None when the backend has no gate (final results only).
    quality: str | None = None
    quality_detail: str = ""
    # ``maps`` blurred by the smoothed display's Gaussian, per kind (final results; prepared in the worker).
    smoothed: dict[str, PreparedMaps] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Content digest of the image: `retinaview.core.common.io.file_digest` of the file (or
        `array_digest` of an in-memory image). Stable across renames and sessions: the key under which
        anything remembered about this photograph (reviews, notes) is stored."""
        return str(self.key[0])

    @property
    def check_name(self) -> str:
        """What ``residual`` measures (the method's own check)."""
        return str(self.explanation.check_name)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The map kinds of this result, the method's own map first (rfscore: total, input, constant)."""
        return tuple(self.maps)

    def prepared(self, kind: str) -> PreparedMaps:
        """The prepared maps of ``kind``, or of the method's own map when the method has no such kind (a
        view set to rfscore's ``constant`` shows a saliency map's only kind)."""
        return self.maps.get(kind) or next(iter(self.maps.values()))

    def is_done(self, c: int) -> bool:
        """Whether class ``c``'s maps are computed (always, for a final result)."""
        return not self.partial or c in self.done

    @property
    def probs(self) -> np.ndarray:
        return np.asarray(self.explanation.probs, dtype=np.float64)

    @property
    def grade(self) -> int:
        return int(np.argmax(self.explanation.logits))

    def nbytes(self) -> int:
        """Memory held by the arrays of this result, in bytes (what the cache counts)."""
        total = self.photo.nbytes + sum(m.nbytes() for m in self.maps.values())
        total += sum(m.nbytes() for m in self.smoothed.values())
        ex = self.explanation
        arrays = [ex.maps, *ex.extra_maps.values(), ex.fov, ex.display, ex.features]
        arrays += [ex.feature_maps, ex.logits, ex.probs, ex.bias]
        total += sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
        for layer in getattr(ex, "layers", ()) or ():
            total += layer.si.nbytes + layer.sk.nbytes
        return total


# The Vessels panel's view; the overlay's vessel underlay asks with a view of its own.
VESSELS_VIEW = "vessels"
UNDERLAY_VIEW = "vessel-underlay"
# Side-output weights of the trained network (DRIU's four branches, Maninis et al. 2016).
UNIT_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SegmentRequest:
    """Segment the vessels of one image with the engine's vessel model.

    ``params``: ``branch_weights`` (4 floats, each side output's factor before the fuse layer; default all
    ones), ``gradcam`` (bool: the per-layer Grad-CAM maps too), ``region`` (``[top, left, bottom, right]``
    in photograph pixels or None: the Grad-CAM target is the summed vessel logit of that rectangle, else of
    the whole image), ``signed`` (bool: Grad-CAM maps without the final ReLU). JSON-serialisable: they are
    part of the cache key. ``generation`` and ``view`` as for `ExplainRequest`.
    """

    image: Path | np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    generation: int = 0
    view: str = VESSELS_VIEW

    @property
    def path(self) -> Path | None:
        return self.image if isinstance(self.image, Path) else None

    @property
    def label(self) -> str:
        return self.image.name if isinstance(self.image, Path) else "<array>"

    def params_key(self) -> str:
        return json.dumps(self.params, sort_keys=True, default=str)


@dataclass
class SegmentResult:
    """One segmented image, ready to draw; every map at model resolution, placed by ``to_photo``.

    ``photo``: (H, W, 3) uint8. ``to_photo``: (a_y, b_y, a_x, b_x) as in `ExplainResult`. ``probability``:
    (S, S) float32 vessel probability; ``fov``: (S, S) bool; ``threshold``: the model's own vessel threshold.
    ``gradcams``: layer name -> (S, S) float32 Grad-CAM map, input to output (empty when not asked for).
    ``scores``: `retinaview.core.common.vessel_metrics.VesselScores` as a dict when a vessel mask lies
    beside the image (``mask``: its file name), else None. ``model``: the vessel model's description.
    """

    request: SegmentRequest
    key: tuple[str, ...]
    photo: np.ndarray
    to_photo: tuple[float, float, float, float]
    probability: np.ndarray
    fov: np.ndarray
    threshold: float
    gradcams: dict[str, np.ndarray]
    scores: dict[str, float] | None
    mask: str | None
    model: ModelInfo
    seconds: float
    cached: bool = False

    @property
    def digest(self) -> str:
        """Content digest of the image (as `ExplainResult.digest`)."""
        return str(self.key[0])

    def nbytes(self) -> int:
        """Memory held by the arrays of this result, in bytes (what the cache counts)."""
        arrays = [self.photo, self.probability, self.fov, *self.gradcams.values()]
        return sum(a.nbytes for a in arrays)
