"""One-file checkpoints: architecture and config, weights, preprocessing, class names, metrics, provenance.

Written atomically (temporary file in the same folder, then rename) so a crash never leaves half a model.
Read with ``torch.load(weights_only=True)``: a file that tries to run code while unpickling is refused, not run.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from retinaview.core.common.errors import CheckpointError
from retinaview.core.models.registry import ModelSpec, build_model, get_architecture

FORMAT = "retinaview-checkpoint"
VERSION = 1


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    spec: ModelSpec,
    *,
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` and its spec to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = model.module if hasattr(model, "module") else model  # DistributedDataParallel
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": spec.arch,
        "config": dict(spec.config),
        "class_names": list(spec.class_names),
        "input_size": spec.input_size,
        "preprocessing": spec.preprocessing,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "metrics": dict(metrics or {}),
        "provenance": dict(provenance or {}),
    }
    if train_state is not None:
        payload["train_state"] = train_state
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; a model file is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint's payload without building the model."""
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise CheckpointError(f"{name}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{name}: is a folder, not a model file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            # A foreign pickle protocol only matters when the file is refused, which we report ourselves.
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for bad files; all mean the same to the user
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            raise CheckpointError(
                f"{name}: refused: the file holds Python objects that could run code "
                "(not a retinaview checkpoint)"
            ) from None
        if "zip" in text.lower() or "EOF" in text or "truncated" in text.lower():
            raise CheckpointError(f"{name}: truncated or corrupt model file") from None
        raise CheckpointError(f"{name}: not a model file ({text.splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not a retinaview checkpoint (no '{FORMAT}' header)")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{name}: written by a newer retinaview (format {payload['version']}, this one reads {VERSION})"
        )
    return payload


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu"
) -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Build the model a checkpoint describes and load its weights; returns (model, spec, payload)."""
    payload = read_checkpoint(path, map_location)
    name = str(path)
    arch = payload.get("arch")
    try:
        get_architecture(arch)
    except CheckpointError as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    config = dict(payload.get("config") or {})
    config["class_names"] = payload.get("class_names")
    model, spec = build_model(arch, config)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise CheckpointError(
            f"{name}: weights do not fit architecture {arch!r} ({first})"
        ) from None
    spec = ModelSpec(
        arch=spec.arch,
        input_size=int(payload.get("input_size", spec.input_size)),
        class_names=spec.class_names,
        preprocessing=str(payload.get("preprocessing", spec.preprocessing)),
        mean=tuple(payload.get("mean", spec.mean)),
        std=tuple(payload.get("std", spec.std)),
        explained_layers=spec.explained_layers,
        classifier=spec.classifier,
        config=spec.config,
        source=name,
        task=spec.task,
    )
    return model, spec, payload
