"""The Python API the CLI, the GUI engine and researchers call: load a model, explain an image."""

from __future__ import annotations

from retinaview.core.model_loading import load_model

__all__ = ["load_model"]
