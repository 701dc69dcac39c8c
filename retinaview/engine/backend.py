"""The engine's link to the headless core. Every torch import is inside a function: these run only in the
engine's worker thread, so the GUI never waits for torch to load (DESIGN.md, start-up)."""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from inspect import signature
from pathlib import Path
from typing import Any

import numpy as np

from retinaview.engine.requests import ModelInfo


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
    """
    if "torch" in sys.modules:
        return
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
    """Loads models and explains images with `retinaview.core.api` (the same calls as the CLI)."""

    def load(self, name_or_path: str) -> tuple[Any, ModelInfo]:
        t0 = time.perf_counter()
        import_torch()
        from retinaview.core.device import describe_device
        from retinaview.core.model_loading import default_model_path, load_model

        model = load_model(name_or_path)
        spec = model.spec
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
        )
        return model, info

    def explain(
        self,
        model: Any,
        image: np.ndarray,
        method: str,
        params: dict[str, Any],
        on_partial: Callable[[Any], None] | None = None,
    ):
        """``on_partial(explanation)`` after each class, the predicted class first, for the methods that
        compute class by class (the others ignore it)."""
        from retinaview.core.api import explain
        from retinaview.core.explain.methods import METHODS

        fn = METHODS.get(method)
        if on_partial is not None and fn is not None and "on_partial" in signature(fn).parameters:
            params = {**params, "on_partial": on_partial}
        return explain(model, image, method=method, **params)

    def predict(self, model: Any, image: np.ndarray) -> np.ndarray:
        """Class probabilities of one photograph: one forward pass, no explanation."""
        import torch

        from retinaview.core.explain.methods import to_input
        from retinaview.core.preprocess import preprocess

        spec = model.spec
        pre = preprocess(image, spec.preprocessing, spec.input_size)
        with torch.no_grad():
            logits = model(to_input(model, pre.image))
        return torch.softmax(logits.double(), dim=-1)[0].cpu().numpy()
