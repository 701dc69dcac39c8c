"""One-file checkpoints: architecture and config, weights, preprocessing, class names, metrics, provenance.

Written atomically (temporary file in the same folder, then rename) so a crash never leaves half a model.
Read with ``torch.load(weights_only=True)``: a file that tries to run code while unpickling is refused, not run.
"""

from __future__ import annotations

import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from retinaview.core.common.errors import CheckpointError
from retinaview.core.models.registry import ModelSpec, build_model, get_architecture
from retinaview.core.validate import check_fields, check_input_size, check_model_fit

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


# First bytes of file formats a user may give by mistake, so the message says what the file is.
_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "a program"),
    (b"\x93NUMPY", "a numpy array file"),
    (b"\x89HDF", "an HDF5 file"),
)
# torch.save writes a zip archive; the legacy format and plain pickles start with the pickle protocol byte.
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def _kind_of(head: bytes) -> str | None:
    """What the first bytes of a file say it is, when it is not a torch file; None when it may be one."""
    if head.startswith(_TORCH_MAGIC):
        return None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp" or head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "an image or video"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A cut-off multi-byte character at the end of the sample is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "an unknown binary format"
    if "\x00" in text:
        return "an unknown binary format"
    return "text"


def open_checked(path: str | os.PathLike, what: str = "checkpoint") -> bytes:
    """Check that ``path`` is a readable, non-empty regular file that may be a torch file; returns its first
    bytes. Raises `CheckpointError` naming the file and what it is instead."""
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such file") from None
    except PermissionError:
        raise CheckpointError(f"{name}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{name}: cannot read ({_reason(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{name}: not a regular file (a folder), expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a named pipe"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device"
        )
        raise CheckpointError(f"{name}: not a regular file ({kind}), expected a {what}")
    if st.st_size == 0:
        raise CheckpointError(f"{name}: empty file, expected a {what}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except PermissionError:
        raise CheckpointError(f"{name}: permission denied") from None
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot read ({_reason(exc)})") from None
    kind = _kind_of(head)
    if kind is not None:
        raise CheckpointError(f"{name}: not a retinaview {what} (it looks like {kind})")
    return head


def _reason(exc: BaseException) -> str:
    return (" ".join(str(getattr(exc, "strerror", None) or exc).split()) or type(exc).__name__)[
        :120
    ]


def torch_load(path: str | os.PathLike, map_location: Any = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` of a checked file; every failure is one `CheckpointError` line."""
    name = str(path)
    open_checked(path, what)
    try:
        with warnings.catch_warnings():
            # A foreign pickle protocol only matters when the file is refused, which we report ourselves.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for bad files; all mean the same to the user
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            raise CheckpointError(
                f"{name}: refused: the file holds Python objects that could run code "
                f"(not a retinaview {what})"
            ) from None
        if "zip" in text.lower() or "EOF" in text or "truncated" in text.lower():
            raise CheckpointError(f"{name}: truncated or corrupt {what}") from None
        first = " ".join(text.split())[:120]
        raise CheckpointError(f"{name}: not a retinaview {what} ({first})") from None


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint's payload and check every field (`retinaview.core.validate`) without building
    the model."""
    name = str(path)
    payload = torch_load(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not a retinaview checkpoint (no '{FORMAT}' header)")
    check_fields(payload, name, VERSION)
    return payload


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu"
) -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Build the model a checkpoint describes and load its weights; returns (model, spec, payload).

    Every field is checked first; then the weights against the architecture built from the config, and one
    forward pass at the declared input size against the class names.
    """
    payload = read_checkpoint(path, map_location)
    name = str(path)
    arch = payload["arch"]
    try:
        get_architecture(arch)
    except CheckpointError as exc:
        raise CheckpointError(f"{name}: {exc} (field 'arch')") from None
    config = dict(payload.get("config") or {})
    config["class_names"] = payload.get("class_names")
    try:
        with torch.random.fork_rng(devices=[]):
            model, spec = build_model(arch, config)
    except (TypeError, ValueError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:120]
        raise CheckpointError(
            f"{name}: field 'config': settings that build architecture {arch!r} ({first})"
        ) from None
    check_model_fit(model, payload["state_dict"], name, arch)
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
        mean=tuple(float(v) for v in payload.get("mean", spec.mean)),
        std=tuple(float(v) for v in payload.get("std", spec.std)),
        explained_layers=spec.explained_layers,
        classifier=spec.classifier,
        config=spec.config,
        source=name,
        task=spec.task,
    )
    check_input_size(model, spec.input_size, spec.num_classes, name, spec.task)
    return model, spec, payload
