"""Fuzzing output paths: every sub-command that writes (explain, train, synth, train-patient) refuses an
output it cannot write before any work starts, with one line and exit code 2."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from retinaview.cli import main
from retinaview.core.common import paths
from retinaview.core.common.errors import DataError
from retinaview.core.common.paths import check_output_file, check_output_folder
from tests.fuzz_inputs import out_cases, reference_image, tiny_checkpoint


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("image") / "eye.png"
    Image.fromarray(reference_image()).save(path)
    return path


def _folder_commands(out: Path, image: Path) -> dict[str, list[str]]:
    return {
        "explain": ["explain", str(image), "--model", "paper17", "--out", str(out)],
        "train": ["train", "--data", "synth:4:0", "--out", str(out), "--epochs", "1", "--quiet"],
        "synth": ["synth", "--n", "2", "--seed", "0", "--out", str(out), "--size", "64"],
    }


def _refused(capsys, out: Path, match: str) -> None:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    # One line, and it is the first: nothing (not even the model) was loaded before the check.
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"retinaview: --out {out}: "), err
    assert re.search(match, lines[0]), lines[0]


@pytest.mark.parametrize("case", out_cases(), ids=repr)
def test_folder_outputs(case, image, tmp_path, capsys):
    out = case.make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for command, argv in _folder_commands(out, image).items():
        assert main(argv) == 2, command
        _refused(capsys, out, case.match)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


FILE_CASES = [
    ("existing_folder", lambda t: (t / "head.pt").mkdir() or t / "head.pt", r"is a folder"),
    (
        "under_file",
        lambda t: (t / "plain.txt").write_text("x") and t / "plain.txt" / "head.pt",
        r"plain\.txt is a file, not a folder",
    ),
    ("long_name", lambda t: t / ("h" * 300 + ".pt"), r"longer than 255 bytes"),
    ("named_pipe", lambda t: os.mkfifo(t / "pipe.pt") or t / "pipe.pt", r"not a regular file"),
]


@pytest.mark.parametrize(("name", "make", "match"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_file_output(name, make, match, tmp_path, capsys):
    out = make(tmp_path)
    argv = ["train-patient", "--model", "paper17", "--data", "synth:2:0", "--out", str(out)]
    assert main(argv) == 2
    _refused(capsys, out, match)


def test_trailing_separator_names_a_folder(tmp_path):
    with pytest.raises(DataError, match="names a folder, expected a file name"):
        check_output_file(f"{tmp_path}{os.sep}new{os.sep}")


@pytest.mark.parametrize(
    ("err", "match"),
    [
        (errno.EROFS, r"cannot write to .* \(read-only file system\)"),
        (errno.EACCES, r"cannot write to .* \(permission denied\)"),
        (errno.ENOSPC, r"cannot write to .* \(no space left\)"),
    ],
)
def test_unwritable_folder_is_refused_before_work(err, match, image, tmp_path, monkeypatch, capsys):
    """The write probe's failures as the operating system reports them (a read-only mount cannot be
    made without privileges a test should not need)."""

    def refuse(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(paths, "mkstemp", refuse)
    for command, argv in _folder_commands(tmp_path / "new", image).items():
        assert main(argv) == 2, command
        _refused(capsys, tmp_path / "new", match)


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not bind root")
def test_folder_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(DataError, match=r"permission denied"):
            check_output_folder(locked / "run")
    finally:
        locked.chmod(0o700)


def test_good_outputs_are_accepted_and_nothing_is_created(tmp_path):
    assert check_output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_output_file(tmp_path / "c" / "head.pt") == tmp_path / "c" / "head.pt"
    (tmp_path / "old.pt").write_text("replaced")
    assert check_output_file(tmp_path / "old.pt") == tmp_path / "old.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.pt"]


def test_explain_output_name_taken_by_a_folder(image, tmp_path, capsys):
    """The folder is writable, but the file explain writes is taken: one line, not a traceback."""
    model = tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "out"
    (out / "eye.npz").mkdir(parents=True)
    argv = ["explain", str(image), "--model", str(model), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == f"retinaview: {out / 'eye.npz'}: cannot write (Is a directory)", lines
    assert "Traceback" not in "".join(lines)
