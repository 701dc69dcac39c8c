"""The engine's link to the headless core: the `Backend` protocol and `TorchBackend`, which implements it by
calling `retinaview.core.api` (the same calls as the CLI; no torch computation lives here).

Every torch import is inside a function: these run only in the engine's worker thread, so the GUI never waits
for torch to load (importing torch takes seconds on a small CPU; the window is on screen first). Before torch is first imported, ``THP_MEM_ALLOC_ENABLE=1`` is set in
the environment unless the user set it: torch's CPU allocator then backs large tensors with transparent huge
pages, which makes the first touch of the multi-megabyte activations of a 640 px explanation cheaper.

Operations per task (`retinaview.core.models.registry.TASKS`, ``ModelInfo.task``):

- ``"grading"``: ``predict`` (class probabilities) and ``explain`` (an `Explanation` per image);
- ``"vessels"``: ``segment`` (a vessel probability map per pixel) and ``segment_explained`` (the
  segmentation with re-weighted side outputs and Grad-CAM at every layer), the `SegmentingBackend` protocol.
  The engine holds a vessel model in a slot of its own (``load_vessels``), beside the grader, and answers a
  grading request to a vessels model with a message.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from retinaview.engine.requests import ModelInfo

if TYPE_CHECKING:
    from retinaview.core.common.result import Explanation

GRADING = "grading"
VESSELS = "vessels"
# What a backend must offer for a model of each task (the registry's TASKS).
TASK_OPERATIONS: dict[str, tuple[str, ...]] = {
    GRADING: ("predict", "explain"),
    VESSELS: ("segment", "segment_explained"),
}


@runtime_checkable
class Backend(Protocol):
    """What the engine's worker calls, always from the worker thread.

    ``model`` is whatever `load` returned; the engine only passes it back. Errors are raised as exceptions:
    `retinaview.core.common.errors.RetinaviewError` for the user's input (shown as its one line),
    `retinaview.core.common.errors.Cancelled` when ``should_stop`` ended an explanation.
    """

    def load(self, name_or_path: str) -> tuple[Any, ModelInfo]:
        """Load a model by name or checkpoint path; returns it and its description (``task`` included)."""
        ...

    def predict(self, model: Any, image: np.ndarray) -> np.ndarray:
        """(C,) class probabilities of one (H, W, 3) uint8 photograph (grading models)."""
        ...

    def explain(
        self,
        model: Any,
        image: np.ndarray,
        method: str,
        params: dict[str, Any],
        on_partial: Callable[[Explanation], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Explanation:
        """Explain one photograph with a method of `retinaview.core.explain.methods` (grading models).

        ``on_partial`` and ``should_stop`` follow the method contract: partial results after each class,
        the predicted class first; a stop check between classes.
        """
        ...


@runtime_checkable
class SegmentingBackend(Protocol):
    """The operations of a ``"vessels"`` model: the seam a vessel segmentation backend fills."""

    def load_vessels(self, name_or_path: str) -> tuple[Any, ModelInfo]:
        """Load a vessel model (``"default"``: the bundled one); raises when it is not one."""
        ...

    def segment(self, model: Any, image: np.ndarray) -> np.ndarray:
        """(H, W) float vessel probability of one (H, W, 3) uint8 photograph, at its resolution."""
        ...

    def segment_explained(
        self,
        model: Any,
        image: np.ndarray,
        branch_weights: tuple[float, ...] | None = None,
        gradcam: bool = False,
        region: tuple[float, float, float, float] | None = None,
        signed: bool = False,
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """The `retinaview.core.segment.Segmentation` of one photograph with the side outputs multiplied by
        ``branch_weights``, and (``gradcam``) the Grad-CAM map of every layer at model resolution, of the
        summed vessel logit inside ``region`` (top, left, bottom, right in photograph pixels) or everywhere.
        """
        ...


def model_id(name_or_path: str) -> str:
    """Identity of a model for cache keys: the name, plus size and mtime for files (retrained weights differ)."""
    p = Path(name_or_path)
    try:
        st = p.stat()
    except OSError:
        return str(name_or_path)
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


# libtorch's libraries in dependency order; the dynamic loader runs their static initialisers (~0.5 s).
TORCH_LIBRARIES = (
    "libc10.so",
    "libtorch_cpu.so",
    "libc10_cuda.so",
    "libtorch_cuda.so",
    "libtorch.so",
)


def import_torch() -> None:
    """Import torch (and the core) in the worker thread without stalling the GUI thread for long.

    The GUI thread waits whenever the worker holds the GIL, and two parts of ``import torch`` hold it for
    hundreds of milliseconds at a stretch (py-spy --gil): the dynamic loader running libtorch's static
    initialisers inside the import of ``torch._C``, and the garbage collector's full passes over the many
    objects the import creates. So libtorch's libraries are loaded first by a plain ``dlopen`` call through
    ctypes, which releases the GIL (the import then finds them loaded), and the collector is paused during
    the import; the import's objects are then frozen (`gc.freeze`) so that later full passes skip them.
    ``THP_MEM_ALLOC_ENABLE=1`` is set first unless the user set it (see the module docstring).
    """
    if "torch" in sys.modules:
        return
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    _preload_libraries()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import torch  # noqa: F401

        import retinaview.core.api
        import retinaview.core.model_loading  # noqa: F401
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _preload_libraries() -> None:
    """dlopen libtorch's shared libraries without the GIL (Linux; elsewhere the import loads them)."""
    spec = importlib.util.find_spec("torch")
    if not sys.platform.startswith("linux") or spec is None or spec.origin is None:
        return
    lib = Path(spec.origin).parent / "lib"
    try:
        dlopen = ctypes.CDLL(None).dlopen
    except (OSError, AttributeError):
        return
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = (ctypes.c_char_p, ctypes.c_int)
    for name in TORCH_LIBRARIES:
        path = lib / name
        # RTLD_LOCAL, as torch loads them; a library that does not load is left to the import to report.
        if path.is_file():
            dlopen(bytes(path), os.RTLD_NOW | os.RTLD_LOCAL)


class TorchBackend:
    """`Backend` for torch models: every operation is one call of `retinaview.core.api`."""

    def load(self, name_or_path: str) -> tuple[Any, ModelInfo]:
        """Load a model with `retinaview.core.api.load_model` (importing torch first, see `import_torch`).

        Parameters
        ----------
        name_or_path : str
            ``"default"``, a registered architecture or a checkpoint path.

        Returns
        -------
        model : torch.nn.Module
        info : ModelInfo
            ``model_id`` changes whenever the weights can differ (path, size and modification time).
        """
        t0 = time.perf_counter()
        import_torch()
        from retinaview.core.api import load_model
        from retinaview.core.device import describe_device
        from retinaview.core.model_loading import default_model_path
        from retinaview.core.models.registry import spec_of

        model = load_model(name_or_path)
        spec = spec_of(model)
        device = next(model.parameters()).device
        ident = name_or_path
        if name_or_path == "default":
            path = default_model_path()
            ident = str(path) if path is not None else "default"
        info = ModelInfo(
            model_id=model_id(ident),
            arch=spec.arch,
            source=spec.source or str(name_or_path),
            class_names=tuple(spec.class_names),
            device=describe_device(device),
            input_size=int(spec.input_size),
            seconds=time.perf_counter() - t0,
            task=spec.task,
        )
        return model, info

    def explain(
        self,
        model: Any,
        image: np.ndarray,
        method: str,
        params: dict[str, Any],
        on_partial: Callable[[Explanation], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Explanation:
        """`retinaview.core.api.explain` of one photograph (see `Backend.explain`)."""
        from retinaview.core.api import explain

        return explain(
            model, image, method=method, on_partial=on_partial, should_stop=should_stop, **params
        )

    def quality(self, image: np.ndarray) -> tuple[str, str]:
        """The quality gate (`retinaview.core.quality.assess_quality`) of one photograph: its label
        (``gradable`` or ``ungradable: <reason>``) and the sentence naming the failed measure."""
        from retinaview.core.quality import assess_quality

        verdict = assess_quality(image)
        return verdict.label, verdict.detail

    def predict(self, model: Any, image: np.ndarray) -> np.ndarray:
        """`retinaview.core.api.predict`: class probabilities, one forward pass, no explanation."""
        from retinaview.core.api import predict

        return predict(model, image)

    def segment(self, model: Any, image: np.ndarray) -> np.ndarray:
        """`retinaview.core.segment.segment`: the vessel probability on the photograph's pixel grid."""
        from retinaview.core.segment import segment

        return segment(model, image).on_photo()

    def load_vessels(self, name_or_path: str) -> tuple[Any, ModelInfo]:
        """Load a vessel model with `retinaview.core.segment.load_vessel_model` (``"default"``: the bundled
        one); a checkpoint of a grader is refused with one line."""
        t0 = time.perf_counter()
        import_torch()
        from retinaview.core.device import describe_device
        from retinaview.core.models.registry import spec_of
        from retinaview.core.segment import BUNDLED_VESSEL_MODEL, load_vessel_model

        model = load_vessel_model(name_or_path)
        spec = spec_of(model)
        ident = str(BUNDLED_VESSEL_MODEL) if name_or_path == "default" else name_or_path
        info = ModelInfo(
            model_id=model_id(ident),
            arch=spec.arch,
            source=spec.source or str(name_or_path),
            class_names=tuple(spec.class_names),
            device=describe_device(next(model.parameters()).device),
            input_size=int(spec.input_size),
            seconds=time.perf_counter() - t0,
            task=spec.task,
        )
        return model, info

    def segment_explained(
        self,
        model: Any,
        image: np.ndarray,
        branch_weights: tuple[float, ...] | None = None,
        gradcam: bool = False,
        region: tuple[float, float, float, float] | None = None,
        signed: bool = False,
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """`retinaview.core.segment.segment` with re-weighted side outputs, and Grad-CAM per layer (see
        `SegmentingBackend.segment_explained`). The model's branch weights are restored afterwards."""
        import torch

        from retinaview.core.explain.segmentation import vessel_gradcams
        from retinaview.core.preprocess import preprocess
        from retinaview.core.segment import segment

        spec = model.spec
        pre = preprocess(image, spec.preprocessing, spec.input_size)
        weights = getattr(model, "branch_weights", None)
        reweight = branch_weights is not None and any(float(w) != 1.0 for w in branch_weights)
        if reweight and weights is None:
            from retinaview.core.common.errors import CheckpointError

            raise CheckpointError(
                f"{spec.source or spec.arch}: no side-output branches to re-weight (not a DRIU network)"
            )
        saved = None if weights is None else weights.clone()
        try:
            if weights is not None and branch_weights is not None:
                weights.copy_(torch.as_tensor(branch_weights, dtype=weights.dtype))
            if gradcam:
                # The segmentation comes from Grad-CAM's own forward pass.
                mask = None if region is None else region_mask(pre.geometry, region)
                cams = vessel_gradcams(model, pre, mask, relu=not signed)
                seg, maps = cams.segmentation, cams.maps
            else:
                seg, maps = segment(model, pre), {}
        finally:
            if weights is not None and saved is not None:
                weights.copy_(saved)
        return seg, maps


def region_mask(geometry: Any, region: tuple[float, float, float, float]) -> np.ndarray:
    """(S, S) bool: the model pixels whose centre lies inside the photograph rectangle ``region``
    (top, left, bottom, right in photograph pixels, as drawn); raises when none does."""
    from retinaview.core.common.errors import RetinaviewError

    top, left, bottom, right = (float(v) for v in region)
    y0, x0 = geometry.photo_to_model_coords(min(top, bottom), min(left, right))
    y1, x1 = geometry.photo_to_model_coords(max(top, bottom), max(left, right))
    rows = np.arange(geometry.size, dtype=np.float64)
    inside_y = (rows >= float(y0)) & (rows <= float(y1))
    inside_x = (rows >= float(x0)) & (rows <= float(x1))
    mask = inside_y[:, None] & inside_x[None, :]
    if not mask.any():
        raise RetinaviewError(
            "the region is too small or outside the photograph: draw a larger one"
        )
    return mask
