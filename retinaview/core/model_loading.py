"""Resolve 'default', an architecture name or a checkpoint path to a ready model in eval mode."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from retinaview.core.checkpoint import load_checkpoint
from retinaview.core.common.errors import CheckpointError
from retinaview.core.device import resolve_device
from retinaview.core.models.registry import ARCHITECTURES, ModelSpec, build_model

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEFAULT_MODEL = RESOURCES / "models" / "paper17_synthetic.pt"
RANDOM_SEED = 0


DEFAULT_MODEL_ENV = "RETINAVIEW_DEFAULT_MODEL"


def default_model_path() -> Path | None:
    """The model 'default' names: the file in ``RETINAVIEW_DEFAULT_MODEL`` when that is set, else the
    bundled trained model, or None while that is not there.

    A ``RETINAVIEW_DEFAULT_MODEL`` that names no file is an error (`CheckpointError`), never a silent
    fall-back to an untrained network.
    """
    env = os.environ.get(DEFAULT_MODEL_ENV)
    if env:
        path = Path(env)
        if not path.exists():
            raise CheckpointError(f"{DEFAULT_MODEL_ENV}={env}: no such file")
        return path
    return DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None


def load_model(name_or_path: str | os.PathLike = "default", device: Any = None) -> nn.Module:
    """Return a model in eval mode on ``device`` with its `ModelSpec` as ``model.spec``.

    ``name_or_path``: ``"default"`` (the bundled trained paper17; a seeded random paper17 if it is missing,
    which ``model.spec.source`` says), a registered architecture name (random weights, seed 0), or a
    checkpoint file.
    """
    dev = resolve_device(device)
    name = str(name_or_path)
    if name == "default":
        path = default_model_path()
        if path is None:
            model, spec = _random("paper17")
            spec = replace(
                spec, source="untrained paper17 (random weights, seed 0): no bundled model found"
            )
        elif os.environ.get(DEFAULT_MODEL_ENV):
            try:
                model, spec, _ = load_checkpoint(path)
            except CheckpointError as exc:
                raise CheckpointError(f"{DEFAULT_MODEL_ENV}: {exc}") from None
        else:
            model, spec, _ = load_checkpoint(path)
            spec = replace(spec, source=f"bundled model {path.name}")
    elif name in ARCHITECTURES and not Path(name).exists():
        model, spec = _random(name)
    elif Path(name).exists() or os.sep in name or name.endswith((".pt", ".pth", ".ckpt")):
        model, spec, _ = load_checkpoint(name)
    else:
        known = ", ".join(["default", *sorted(ARCHITECTURES)])
        raise CheckpointError(f"{name}: no such model file or architecture (known: {known})")
    model.spec = spec
    return model.to(dev).eval()


def _random(arch: str) -> tuple[nn.Module, ModelSpec]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model, spec = build_model(arch)
    return model, replace(spec, source=f"untrained {arch} (random weights, seed {RANDOM_SEED})")
