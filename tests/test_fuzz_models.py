"""Fuzzing model files: checkpoints with one field wrong at a time, files that are not checkpoints, run
folders for ``train --resume``, both-eyes head files and ``RETINAVIEW_DEFAULT_MODEL``, through every
sub-command that reads them. Each must end in exit code 2 and one stderr line naming the file, the field
and what was expected; never a traceback, never code run from the file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from retinaview.cli import main
from retinaview.core.checkpoint import load_checkpoint, read_checkpoint
from retinaview.core.common.errors import CheckpointError
from retinaview.core.validate import check_model_fit, check_train_state
from retinaview.train.patient import load_head
from tests.fuzz_inputs import (
    CHECKPOINT_EDITS,
    HEAD_EDITS,
    RUN_EDITS,
    checkpoint_file_cases,
    edited_copy,
    paper17_checkpoint,
    paper17_run,
    patient_head,
    reference_image,
    tiny_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return paper17_checkpoint(tmp_path_factory.mktemp("base") / "paper17.pt")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("image") / "eye.png"
    Image.fromarray(reference_image()).save(path)
    return path


def _commands(model: Path, image: Path, out: Path) -> dict[str, list[str]]:
    """Every sub-command that takes ``--model``, with arguments that are fine apart from the model."""
    return {
        "explain": ["explain", str(image), "--model", str(model), "--out", str(out / "x")],
        "layers": ["layers", "--model", str(model)],
        "evaluate": ["evaluate", "--model", str(model), "--data", "synth:2:0", "--workers", "0"],
        "train-patient": [
            "train-patient",
            "--model",
            str(model),
            "--data",
            "synth:2:0",
            "--out",
            str(out / "head.pt"),
        ],
    }


def _one_line(capsys, path: Path, match: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"retinaview: {path}: "), err
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def test_base_checkpoint_loads(base, capsys):
    model, spec, _ = load_checkpoint(base)
    assert spec.arch == "paper17" and spec.num_classes == 5
    assert main(["layers", "--model", str(base)]) == 0
    assert "paper17" in capsys.readouterr().out


def test_enough_cases():
    files = checkpoint_file_cases(Path("unused"))
    assert len(CHECKPOINT_EDITS) + len(files) >= 50
    assert len(RUN_EDITS) >= 10 and len(HEAD_EDITS) >= 10


@pytest.mark.parametrize(
    ("name", "edit", "match"), CHECKPOINT_EDITS, ids=[e[0] for e in CHECKPOINT_EDITS]
)
def test_checkpoint_field(name, edit, match, base, image, tmp_path, capsys):
    bad = edited_copy(base, tmp_path / f"{name}.pt", edit)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    msg = str(info.value)
    assert msg.startswith(f"{bad}: ") and "\n" not in msg and re.search(match, msg), msg
    for command, argv in _commands(bad, image, tmp_path).items():
        assert main(argv) == 2, command
        _one_line(capsys, bad, match)
    assert not (tmp_path / "x").exists()  # refused before any output


@pytest.fixture(scope="module")
def file_cases(base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("not checkpoints")
    return [(case, case.make(folder)) for case in checkpoint_file_cases(base)]


FILE_CASE_NAMES = [c.name for c in checkpoint_file_cases(Path("unused"))]


@pytest.mark.parametrize("index", range(len(FILE_CASE_NAMES)), ids=FILE_CASE_NAMES)
def test_not_a_checkpoint(index, file_cases, image, tmp_path, capsys):
    case, path = file_cases[index]
    for command, argv in _commands(path, image, tmp_path).items():
        assert main(argv) == 2, (case.name, command)
        _one_line(capsys, path, case.match)
    assert not (path.parent / "pwned").exists()  # the exploit's marker: no code ran


@pytest.mark.parametrize("kind", ["jpeg", "text", "named_pipe"])
def test_subprocess_exit_code_and_no_traceback(kind, file_cases, image, tmp_path):
    case, path = next((c, p) for c, p in file_cases if c.name == kind)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "retinaview", "explain", str(image), "--model", str(path)]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"retinaview: {path}: "), proc.stderr
    assert re.search(case.match, lines[0])


# ------------------------------------------------------------------------------ train --resume


@pytest.fixture(scope="module")
def run_base(tmp_path_factory) -> Path:
    return paper17_run(tmp_path_factory.mktemp("run") / "base") / "last.pt"


def test_base_run_is_resumable(run_base):
    from retinaview.core.models.registry import build_model

    payload = read_checkpoint(run_base)
    check_train_state(payload["train_state"], str(run_base), 5)
    model, _ = build_model("paper17")
    check_model_fit(model, payload["state_dict"], str(run_base), "paper17")


def _train_resume(out: Path) -> list[str]:
    return ["train", "--arch", "paper17", "--data", "synth:20:0", "--out", str(out), "--resume"]


@pytest.mark.parametrize(("name", "edit", "match"), RUN_EDITS, ids=[e[0] for e in RUN_EDITS])
def test_resume(name, edit, match, run_base, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    last = edited_copy(run_base, run / "last.pt", edit)
    before = last.read_bytes()
    argv = [*_train_resume(run), "--epochs", "1", "--workers", "0", "--threads", "1", "--quiet"]
    assert main(argv) == 2
    _one_line(capsys, last, match)
    assert last.read_bytes() == before  # the run is left as it was


@pytest.mark.parametrize("what", ["text", "folder", "jpeg"])
def test_resume_from_a_file_that_is_not_a_checkpoint(what, tmp_path, capsys):
    from PIL import Image

    run = tmp_path / "run"
    run.mkdir()
    last = run / "last.pt"
    if what == "text":
        last.write_text("epoch 3\n")
        match = r"it looks like text"
    elif what == "folder":
        last.mkdir()
        match = r"not a regular file \(a folder\)"
    else:
        Image.fromarray(reference_image()).save(last, format="JPEG")
        match = r"it looks like a JPEG image"
    assert main([*_train_resume(run), "--workers", "0", "--quiet"]) == 2
    _one_line(capsys, last, match)


# ------------------------------------------------------------------------------ both-eyes head


@pytest.fixture(scope="module")
def head_base(tmp_path_factory) -> Path:
    return patient_head(tmp_path_factory.mktemp("head") / "head.pt")


def test_base_head_loads(head_base):
    head = load_head(head_base, 5, 64)
    assert head.weight.shape == (5, 128)


@pytest.mark.parametrize(("name", "edit", "match"), HEAD_EDITS, ids=[e[0] for e in HEAD_EDITS])
def test_head(name, edit, match, head_base, base, tmp_path, capsys):
    bad = edited_copy(head_base, tmp_path / f"{name}.pt", edit)
    argv = [
        "evaluate",
        "--model",
        str(base),
        "--data",
        "synthpairs:1:0",
        "--patient-head",
        str(bad),
    ]
    assert main([*argv, "--workers", "0"]) == 2
    _one_line(capsys, bad, match)


@pytest.mark.parametrize("what", ["text", "checkpoint"])
def test_head_file_of_another_kind(what, base, tmp_path, capsys):
    bad = tmp_path / "head.pt"
    if what == "text":
        bad.write_text("weights\n")
        match = r"not a retinaview both-eyes head file \(it looks like text\)"
    else:
        bad.write_bytes(base.read_bytes())
        match = r"not a both-eyes head file \(no 'retinaview-patient-head' header\)"
    argv = [
        "evaluate",
        "--model",
        str(base),
        "--data",
        "synthpairs:1:0",
        "--patient-head",
        str(bad),
    ]
    assert main(argv) == 2
    _one_line(capsys, bad, match)


# --------------------------------------------------------------------- RETINAVIEW_DEFAULT_MODEL


@pytest.mark.parametrize("what", ["missing", "text", "folder", "nan_weights"])
def test_default_model_variable_naming_a_bad_file(what, base, tmp_path, monkeypatch, capsys):
    path = tmp_path / "default.pt"
    match = {
        "missing": r"no such file",
        "text": r"it looks like text",
        "folder": r"not a regular file \(a folder\)",
        "nan_weights": r"expected finite numbers",
    }[what]
    if what == "text":
        path.write_text("not a model\n")
    elif what == "folder":
        path.mkdir()
    elif what == "nan_weights":
        edit = next(e for n, e, _ in CHECKPOINT_EDITS if n == "weights_nan")
        edited_copy(base, path, edit)
    monkeypatch.setenv("RETINAVIEW_DEFAULT_MODEL", str(path))
    assert main(["layers"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "RETINAVIEW_DEFAULT_MODEL" in err and str(path) in err
    assert re.search(match, err), err
    assert "untrained" not in err


def test_default_model_variable_naming_a_good_file(tmp_path, monkeypatch, capsys):
    path = tiny_checkpoint(tmp_path / "mine.pt")
    monkeypatch.setenv("RETINAVIEW_DEFAULT_MODEL", str(path))
    assert main(["layers", "--model", "default"]) == 0
    assert f"resnet18 ({path})" in capsys.readouterr().out


def test_empty_default_model_variable_means_the_bundled_model(monkeypatch, capsys):
    monkeypatch.setenv("RETINAVIEW_DEFAULT_MODEL", "")
    assert main(["layers"]) == 0
    assert "bundled model paper17_synthetic.pt" in capsys.readouterr().out


def test_nan_weights_are_not_graded(base, tmp_path):
    """Before: weights with a NaN loaded and graded every image 'No DR'."""
    edit = next(e for n, e, _ in CHECKPOINT_EDITS if n == "weights_nan")
    bad = edited_copy(base, tmp_path / "nan.pt", edit)
    with pytest.raises(CheckpointError, match="expected finite numbers"):
        load_checkpoint(bad)
    assert torch.isnan(
        torch.load(bad, weights_only=True)["state_dict"]["body.layer1.0.weight"]
    ).any()
