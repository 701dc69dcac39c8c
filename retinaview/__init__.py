"""retinaview: grade diabetic-retinopathy fundus photographs and show why.

The package imports nothing heavy at start-up: ``load_model`` and ``explain`` import torch on first use,
so the desktop app can put its window on screen before torch has loaded.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "explain", "load_model"]


def load_model(name_or_path: str = "default", device: Any = None):
    """Load a registered model or a checkpoint file; see `retinaview.core.api.load_model`."""
    from retinaview.core.api import load_model as _load_model

    return _load_model(name_or_path, device=device)


def explain(model, image, method: str = "rfscore", **params):
    """Explain one image with one method; see `retinaview.core.api.explain`."""
    from retinaview.core.api import explain as _explain

    return _explain(model, image, method=method, **params)
