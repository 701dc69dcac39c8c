"""Training options, checked once: ``retinaview train``, the training dialog and `train` call `problems`.

Torch-free (the desktop app checks its form with it before torch is loaded), so the architecture names live
here as plain strings; a test keeps `ARCHITECTURE_NAMES` equal to the model registry's. Each problem is one
line that names the option and what is wrong. Front ends name options differently (``--resume`` on the
command line, a checkbox in the dialog): they pass ``names`` and the wording stays the same.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retinaview.core.common.errors import DataError, RetinaviewError
from retinaview.core.common.io import list_images
from retinaview.core.common.labels import LABEL_FILES, find_labels_csv

# The registered architectures (retinaview.core.models.registry.ARCHITECTURES) and their task, in the order a
# menu offers them; `retinaview train` trains the graders, `retinaview train --task vessels` the vessel networks.
ARCHITECTURE_TASKS = {
    "paper17": "grading",
    "resnet18": "grading",
    "densenet121": "grading",
    "inception_v3": "grading",
    "driu": "vessels",
}
ARCHITECTURE_NAMES = tuple(a for a, task in ARCHITECTURE_TASKS.items() if task == "grading")
LOSSES = {
    "kappa": "Quadratic kappa",
    "ce": "Cross-entropy",
    "kappa+ce": "Kappa + cross-entropy",
}
NUM_GRADES = 5
CHECKPOINT = "last.pt"
MIN_IMAGE_SIZE = 16
# How the command line names each option; the dialog passes its own names.
CLI_NAMES = {
    "arch": "--arch",
    "data": "--data",
    "val": "--val",
    "labels": "--labels",
    "val_labels": "--val-labels",
    "val_fraction": "--val-fraction",
    "epochs": "--epochs",
    "batch": "--batch",
    "val_batch": "--val-batch",
    "lr": "--lr",
    "lr_steps": "--lr-steps",
    "lr_gamma": "--lr-gamma",
    "loss": "--loss",
    "balance": "--balance",
    "image_size": "--image-size",
    "threads": "--threads",
    "workers": "--workers",
    "max_minutes": "--max-minutes",
    "save_every_minutes": "--save-every-minutes",
    "out": "--out",
    "resume": "--resume",
}


def parse_synth(text: str) -> tuple[int, int] | None:
    """``synth:N[:SEED]`` -> (N, SEED); None for a folder; `DataError` for a malformed synth source."""
    if not text.startswith("synth:"):
        return None
    parts = text.split(":")[1:]
    try:
        if not 1 <= len(parts) <= 2:
            raise ValueError
        n = int(parts[0])
        seed = int(parts[1]) if len(parts) == 2 else 0
    except ValueError:
        raise DataError(f"{text}: expected synth:N or synth:N:SEED with whole numbers") from None
    if n <= 0 or seed < 0:
        raise DataError(f"{text}: N must be positive and SEED not negative")
    return n, seed


def parse_balance(text: str | None, flag: str = "--balance") -> tuple[float, ...] | None:
    """``none`` -> None (natural frequencies), ``equal`` -> 1/K each, or K comma-separated proportions."""
    if text is None or text in ("", "none"):
        return None
    if text == "equal":
        return (1.0 / NUM_GRADES,) * NUM_GRADES
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise DataError(
            f"{flag} {text}: expected none, equal or {NUM_GRADES} comma-separated proportions"
        ) from None
    if len(values) != NUM_GRADES or any(not v >= 0 for v in values) or sum(values) <= 0:
        raise DataError(f"{flag} {text}: expected {NUM_GRADES} non-negative proportions")
    total = sum(values)
    return tuple(v / total for v in values)


def find_labels_file(folder: Path) -> Path:
    """The labels CSV of an image folder (`retinaview.core.common.labels.find_labels_csv`: one of its
    `LABEL_FILES`, else the folder's only CSV file); a one-line `DataError` when there is none or several."""
    try:
        found = find_labels_csv(folder)
    except DataError as exc:
        raise DataError(f"{exc}; name the labels file with --labels") from None
    if found is None:
        raise DataError(
            f"{folder}: no labels CSV (expected {' or '.join(LABEL_FILES)} with image,level)"
        )
    return found


def _source_problem(text: str, labels: Any, flag: str) -> str | None:
    text = str(text or "").strip()
    if not text:
        return f"{flag}: choose synthetic images (synth:N:SEED) or an image folder"
    try:
        if parse_synth(text) is not None:
            return None
    except DataError as exc:
        return str(exc)
    folder = Path(text).expanduser()
    if not folder.exists():
        return f"{text}: no such folder (and not a synth:N:SEED source)"
    if not folder.is_dir():
        return f"{text}: not a folder"
    try:
        images = list_images(folder)
    except RetinaviewError as exc:
        return str(exc)
    if not images:
        return f"{text}: no images (.png, .jpg, .tif, .bmp) in this folder"
    if labels:
        if not Path(labels).expanduser().is_file():
            return f"{labels}: no such labels file"
        return None
    try:
        find_labels_file(folder)
    except DataError as exc:
        return str(exc)
    return None


def _out_problem(text: str, resume: bool, names: Mapping[str, str]) -> str | None:
    if not text:
        return f"{names['out']}: choose an output folder"
    out = Path(text).expanduser()
    if out.exists() and not out.is_dir():
        return f"{out}: exists and is not a folder"
    if (out / CHECKPOINT).exists() and not resume:
        return (
            f"{out}: already holds a run ({CHECKPOINT}); continue it with {names['resume']} "
            f"or choose another {names['out']}"
        )
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        return f"{out}: cannot write in {existing}"
    return None


def _whole(value: Any, low: int, name: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        return f"{name} {value}: expected a whole number >= {low}"
    return None


def _positive(value: Any, name: str, optional: bool = False, zero: bool = False) -> str | None:
    if value is None and optional:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        return f"{name} {value}: expected a {'non-negative' if zero else 'positive'} number"
    return None


def problems(
    options: Mapping[str, Any] | Any,
    names: Mapping[str, str] | None = None,
    check_arch: bool = True,
) -> list[str]:
    """Every problem with a set of training options (`TrainConfig` fields), one line each.

    Parameters
    ----------
    options
        A `retinaview.train.trainer.TrainConfig` or a mapping of its fields; missing fields take the
        `TrainConfig` defaults' meaning (not checked).
    names
        How the front end names each option (default `CLI_NAMES`); keys missing from it use the CLI's.
    check_arch
        False when the caller brings its own model (`train(model=...)`), whose name need not be registered.

    Returns
    -------
    list of str
        Empty when a run can start.
    """
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        options = dataclasses.asdict(options)
    o = dict(options)
    n = {**CLI_NAMES, **(names or {})}
    out: list[str] = []

    def add(problem: str | None) -> None:
        if problem:
            out.append(problem)

    arch = o.get("arch")
    if check_arch and "arch" in o and arch not in ARCHITECTURE_NAMES:
        task = ARCHITECTURE_TASKS.get(arch)
        if task is not None:
            add(f"{arch!r} is a {task} network, not a grader (train it with --task {task})")
        else:
            add(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURE_NAMES))})")
    if "data" in o:
        add(_source_problem(o["data"], o.get("labels"), n["data"]))
    if o.get("val"):
        add(_source_problem(o["val"], o.get("val_labels"), n["val"]))
    for key, low in (("epochs", 1), ("batch", 1)):
        if key in o:
            add(_whole(o[key], low, n[key]))
    add(_whole(o.get("val_batch"), 1, n["val_batch"], optional=True))
    add(_whole(o.get("workers"), 0, n["workers"], optional=True))
    add(_whole(o.get("threads"), 1, n["threads"], optional=True))
    add(_whole(o.get("image_size"), MIN_IMAGE_SIZE, n["image_size"], optional=True))
    if "lr" in o:
        add(_positive(o["lr"], n["lr"]))
    if "lr_gamma" in o:
        add(_positive(o["lr_gamma"], n["lr_gamma"]))
    steps = o.get("lr_steps") or ()
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in steps):
        add(f"{n['lr_steps']} {','.join(map(str, steps))}: expected epoch numbers such as 20,40")
    fraction = o.get("val_fraction", 0.1)
    if not isinstance(fraction, int | float) or not 0 < fraction < 1:
        add(f"{n['val_fraction']} {fraction}: expected a fraction between 0 and 1")
    add(_positive(o.get("max_minutes"), n["max_minutes"], optional=True))
    if "save_every_minutes" in o:
        add(_positive(o["save_every_minutes"], n["save_every_minutes"], zero=True))
    if "loss" in o and o["loss"] not in LOSSES:
        add(f"{n['loss']} {o['loss']}: expected one of {', '.join(LOSSES)}")
    try:
        parse_balance(o.get("balance"), n["balance"])
    except DataError as exc:
        add(str(exc))
    synth = _synth_count(o.get("data"))
    if synth is not None and isinstance(o.get("batch"), int) and synth < o["batch"]:
        add(f"{o['data']}: {synth} training images, fewer than one batch of {o['batch']}")
    if "out" in o:
        add(_out_problem(str(o["out"] or "").strip(), bool(o.get("resume")), n))
    return out


def first_problem(
    options: Mapping[str, Any] | Any,
    names: Mapping[str, str] | None = None,
    check_arch: bool = True,
) -> str | None:
    """The first of `problems`, or None when a run can start."""
    found = problems(options, names, check_arch)
    return found[0] if found else None


def check(
    options: Mapping[str, Any] | Any,
    names: Mapping[str, str] | None = None,
    check_arch: bool = True,
) -> None:
    """Raise `DataError` with the first of `problems` (the command line prints it and exits with 2)."""
    problem = first_problem(options, names, check_arch)
    if problem:
        raise DataError(problem)


def _synth_count(data: Any) -> int | None:
    try:
        parsed = parse_synth(str(data or ""))
    except DataError:
        return None
    return None if parsed is None else parsed[0]
