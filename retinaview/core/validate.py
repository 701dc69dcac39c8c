"""Checkpoint fields, checked one by one before any of them is used.

A checkpoint read with ``weights_only=True`` cannot run code, but its fields can still be anything a pickle
of plain types can hold. Every loader (explain, evaluate, the viewer, ``train --resume``, the both-eyes head)
goes through these checks, so a wrong field ends in one `CheckpointError` line naming the file, the field,
what was expected and what was found, never in a TypeError deep inside torch, and weights that are NaN or
infinite are refused instead of grading every image the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from retinaview.core.common.errors import CheckpointError
from retinaview.core.models.registry import TASKS as REGISTRY_TASKS

__all__ = [
    "MAX_CLASSES",
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "TASKS",
    "check_finite_tensors",
    "check_fields",
    "check_input_size",
    "check_model_fit",
    "check_train_state",
    "describe",
]

# What a retinaview checkpoint's model does (the registry's tasks); a file naming another task is refused,
# not misread.
TASKS = REGISTRY_TASKS
MIN_INPUT_SIZE = 16
MAX_INPUT_SIZE = 4096
MAX_CLASSES = 1000


def describe(value: Any) -> str:
    """A short one-line description of a found value: its type and (shortened) representation."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = " ".join(repr(value).split())
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _fail(name: str, field: str, expected: str, value: Any = None, found: str | None = None):
    got = found if found is not None else describe(value)
    raise CheckpointError(f"{name}: field '{field}': expected {expected}, found {got}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_in(name: str, field: str, value: Any, lo: int, hi: int) -> int:
    if not _is_int(value) or not lo <= value <= hi:
        _fail(name, field, f"an integer {lo}..{hi}", value)
    return int(value)


def _triple(name: str, field: str, value: Any, positive: bool) -> tuple[float, float, float]:
    what = "3 positive numbers" if positive else "3 numbers"
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        _fail(name, field, f"a list of {what}", value)
    if not all(_is_real(v) and (v > 0 or not positive) for v in value):
        _fail(name, field, f"a list of {what}", value)
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def check_fields(payload: Mapping[str, Any], name: str, version: int) -> None:
    """Check every field of a checkpoint payload whose header is already known to be retinaview's.

    Types and ranges only: whether the architecture is registered, and `check_model_fit` (the weights
    against it), are for the loader that builds the model.
    """
    from retinaview.core.preprocess import CHAINS

    v = payload.get("version")
    if not _is_int(v) or v < 1:
        _fail(name, "version", "a positive integer", v)
    if v > version:
        raise CheckpointError(
            f"{name}: written by a newer retinaview (format {v}, this one reads {version})"
        )
    if "task" in payload and payload["task"] not in TASKS:
        _fail(name, "task", " or ".join(repr(t) for t in TASKS), payload["task"])
    config_task = (
        (payload.get("config") or {}).get("task")
        if isinstance(payload.get("config"), Mapping)
        else None
    )
    if config_task is not None and config_task not in TASKS:
        _fail(name, "config.task", " or ".join(repr(t) for t in TASKS), config_task)
    arch = payload.get("arch")
    if not isinstance(arch, str) or not arch:
        _fail(name, "arch", "an architecture name", arch)
    config = payload.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        _fail(name, "config", "a mapping of settings", config)
    for key in config:
        if not isinstance(key, str):
            _fail(name, "config", "setting names that are strings", key)
    num_classes = config.get("num_classes", 5)
    num_classes = _int_in(name, "config.num_classes", num_classes, 1, MAX_CLASSES)
    # The spec's fields may sit in the config (read by the model builder) and at the top level (which
    # wins); both are checked.
    for source, prefix in ((config, "config."), (payload, "")):
        if "input_size" in source:
            _int_in(
                name, prefix + "input_size", source["input_size"], MIN_INPUT_SIZE, MAX_INPUT_SIZE
            )
        if "preprocessing" in source and source["preprocessing"] not in CHAINS:
            _fail(
                name,
                prefix + "preprocessing",
                "one of " + ", ".join(CHAINS),
                source["preprocessing"],
            )
        if "mean" in source:
            _triple(name, prefix + "mean", source["mean"], positive=False)
        if "std" in source:
            _triple(name, prefix + "std", source["std"], positive=True)
    names = payload.get("class_names")
    if names is not None:
        if not isinstance(names, (list, tuple)) or not all(
            isinstance(n, str) and n.strip() for n in names
        ):
            _fail(name, "class_names", "a list of non-empty strings", names)
        if len(names) != num_classes:
            _fail(
                name,
                "class_names",
                f"{num_classes} names, one per model output",
                found=f"{len(names)}",
            )
    for key in ("metrics", "provenance"):
        if key in payload and not isinstance(payload[key], Mapping):
            _fail(name, key, "a mapping", payload[key])
    state = payload.get("state_dict")
    if not isinstance(state, Mapping):
        _fail(name, "state_dict", "a mapping of parameter names to tensors", state)
    for key, value in state.items():
        if not isinstance(key, str):
            _fail(name, "state_dict", "parameter names that are strings", key)
        if not isinstance(value, torch.Tensor):
            _fail(name, f"state_dict[{key!r}]", "a tensor", value)
    check_finite_tensors(state, name, "state_dict")


def check_finite_tensors(tensors: Mapping[str, Any], name: str, field: str) -> None:
    """Refuse a NaN or infinite value in any floating-point tensor of ``tensors``."""
    for key, value in tensors.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                _fail(
                    name,
                    f"{field}[{key!r}]",
                    "finite numbers",
                    found="NaN or infinite values",
                )


def check_model_fit(
    model: nn.Module, state: Mapping[str, torch.Tensor], name: str, arch: str
) -> None:
    """The weights have exactly the parameter names and shapes of the architecture built from the config."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else ""))
        raise CheckpointError(
            f"{name}: weights do not fit architecture {arch!r} (field 'state_dict': {'; '.join(parts)})"
        )
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckpointError(
                f"{name}: weights do not fit architecture {arch!r} (field 'state_dict[{key!r}]': "
                f"expected shape {tuple(want.shape)}, found {tuple(got.shape)})"
            )
        if got.is_floating_point() != want.is_floating_point():
            _fail(name, f"state_dict[{key!r}]", f"a {want.dtype} tensor", got)


def check_input_size(
    model: nn.Module, input_size: int, num_classes: int, name: str, task: str = "grading"
) -> None:
    """One forward pass of a black image at ``input_size``: the size fits the architecture and the output
    has one logit per class name (a grader) or one logit map of the input's size (a vessel network)."""
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, 3, input_size, input_size))
    except (RuntimeError, ValueError) as exc:
        first = " ".join(str(exc).split())[:100]
        raise CheckpointError(
            f"{name}: field 'input_size': {input_size} does not fit the architecture ({first})"
        ) from None
    if task == "vessels":
        if tuple(out.shape) != (1, num_classes, input_size, input_size):
            _fail(
                name,
                "task",
                f"a vessel network giving a {input_size}x{input_size} logit map",
                found=f"output of shape {tuple(out.shape)}",
            )
        return
    if tuple(out.shape) != (1, num_classes):
        _fail(
            name,
            "class_names",
            f"{out.shape[-1]} names, one per model output",
            found=f"{num_classes}",
        )


def check_train_state(state: Any, name: str, num_classes: int) -> None:
    """A ``train_state`` that ``train --resume`` can continue from: every field present and typed."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{name}: no training state to resume from (a finished model file?)")
    for key in ("epoch", "step_in_epoch", "global_step"):
        if key not in state:
            _fail(name, f"train_state.{key}", "an integer >= 0", found="nothing")
        if not _is_int(state[key]) or state[key] < 0:
            _fail(name, f"train_state.{key}", "an integer >= 0", state[key])
    opt = state.get("optimizer")
    if (
        not isinstance(opt, Mapping)
        or not isinstance(opt.get("state"), Mapping)
        or not isinstance(opt.get("param_groups"), list)
    ):
        _fail(
            name,
            "train_state.optimizer",
            "an optimizer state (state and param_groups)",
            opt,
            found="nothing" if opt is None else None,
        )
    rng = state.get("torch_rng")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or rng.ndim != 1:
        _fail(name, "train_state.torch_rng", "a uint8 random-generator state", rng)
    for key in ("best_qwk",):
        if state.get(key) is not None and not _is_real(state[key]):
            _fail(name, f"train_state.{key}", "a number or nothing", state[key])
    if state.get("best_epoch") is not None and not _is_int(state["best_epoch"]):
        _fail(name, "train_state.best_epoch", "an integer or nothing", state["best_epoch"])
    history = state.get("history")
    if history is not None and not (
        isinstance(history, list) and all(isinstance(h, Mapping) for h in history)
    ):
        _fail(name, "train_state.history", "a list of epoch records", history)
    stats = state.get("epoch_stats")
    if stats:
        if not isinstance(stats, Mapping):
            _fail(name, "train_state.epoch_stats", "a mapping", stats)
        for key in ("loss_sum", "seconds", "data_wait"):
            if not _is_real(stats.get(key)):
                _fail(name, f"train_state.epoch_stats.{key}", "a number", stats.get(key))
        for key in ("steps", "images"):
            if not _is_int(stats.get(key)):
                _fail(name, f"train_state.epoch_stats.{key}", "an integer", stats.get(key))
        confusion = stats.get("confusion")
        if (
            not isinstance(confusion, list)
            or len(confusion) != num_classes
            or not all(
                isinstance(row, list) and len(row) == num_classes and all(_is_int(v) for v in row)
                for row in confusion
            )
        ):
            _fail(
                name,
                "train_state.epoch_stats.confusion",
                f"{num_classes} rows of {num_classes} integers",
                confusion,
            )
    if "scaler" in state and not isinstance(state["scaler"], Mapping):
        _fail(name, "train_state.scaler", "a mapping", state["scaler"])
