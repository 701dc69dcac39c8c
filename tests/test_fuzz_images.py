"""Fuzzing images: every case of `tests.fuzz_inputs.IMAGE_CASES` through the image reader, ``retinaview
explain`` and ``retinaview evaluate``, with the promise each case gets (same answer as the clean copy, a
working answer, or one line naming the file and the problem)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from retinaview.cli import main
from retinaview.core.common.errors import ImageError
from retinaview.core.common.io import list_images, load_image
from tests.fuzz_inputs import IMAGE_CASES, reference_image, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cases_folder(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fuzz images")
    return {c.name: c.make(folder) for c in IMAGE_CASES}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def test_at_least_the_promised_variety():
    kinds = {c.expect for c in IMAGE_CASES}
    assert kinds == {"same", "ok", "reject"}
    assert len(IMAGE_CASES) >= 40


@pytest.mark.parametrize("case", IMAGE_CASES, ids=repr)
def test_reader(case, cases_folder):
    """The reader: exact pixels for lossless copies, an RGB image for the others, one clean line else;
    never a Pillow warning."""
    path = cases_folder[case.name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if case.expect == "reject":
            with pytest.raises(ImageError) as info:
                load_image(path)
            msg = str(info.value)
            assert msg.startswith(f"{path}: ") and "\n" not in msg
            assert re.search(case.match, msg), msg
            assert info.value.__cause__ is None
        else:
            img = load_image(path)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
            if case.expect == "same":
                np.testing.assert_array_equal(img, reference_image())
    assert not caught, [str(w.message) for w in caught]


def test_folder_lists_exactly_the_readable_formats(cases_folder):
    """What a folder lists is what the reader is meant for: listed = suffix of a supported format and a
    regular file; GIF, WebP, folders, pipes and dangling links are not listed."""
    folder = next(iter(cases_folder.values())).parent
    listed = {p.name for p in list_images(folder)}
    expected = {cases_folder[c.name].name for c in IMAGE_CASES if c.listed}
    assert listed == expected


@pytest.fixture(scope="module")
def explained(cases_folder, tiny_model, tmp_path_factory):
    """One ``retinaview explain --json`` over every case: (exit code, JSON lines by file, stderr)."""
    out = tmp_path_factory.mktemp("explain out")
    argv = ["explain", *map(str, cases_folder.values()), "--model", str(tiny_model)]
    argv += ["--out", str(out), "--json", "--no-npz", "--device", "cpu"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    lines = [json.loads(line) for line in stdout.getvalue().splitlines() if line.strip()]
    return code, {line["file"]: line for line in lines}, stderr.getvalue()


@pytest.mark.parametrize("case", IMAGE_CASES, ids=repr)
def test_explain(case, cases_folder, explained):
    code, results, stderr = explained
    path = str(cases_folder[case.name])
    assert code == 2  # some images were refused
    assert "Traceback" not in stderr
    if case.expect == "reject":
        assert path not in results
        lines = [ln for ln in _lines(stderr) if ln.startswith(f"retinaview: {path}: ")]
        assert len(lines) == 1, stderr
        assert re.search(case.match, lines[0]), lines[0]
        return
    result = results[path]
    assert 0 <= result["grade"] <= 4
    assert np.all(np.isfinite(result["probs"])) and abs(sum(result["probs"]) - 1) < 1e-4
    if case.expect == "same":
        clean = results[str(cases_folder["clean.png"])]
        assert result["logits"] == clean["logits"]
        assert result["grade"] == clean["grade"]


def _lines(stderr: str) -> list[str]:
    """stderr as lines, without the progress bar's carriage returns and erase-line codes."""
    text = stderr.replace("\x1b[K", "")
    return [ln.strip() for ln in re.split(r"[\r\n]", text) if ln.strip()]


def test_explain_stderr_has_one_line_per_refused_image(cases_folder, explained):
    _, _, stderr = explained
    lines = [ln for ln in _lines(stderr) if ln.startswith("retinaview:")]
    refused = [c for c in IMAGE_CASES if c.expect == "reject"]
    assert len(lines) == 1 + len(refused)  # the model line, then one per refused image
    assert lines[0].startswith("retinaview: model resnet18:")


def test_broken_exif_adds_no_line_to_stderr(cases_folder, tiny_model, tmp_path):
    """A separate process, so no test harness catches the warning before it reaches stderr."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    image = cases_folder["exif_broken"]
    cmd = [sys.executable, "-m", "retinaview", "explain", str(image), "--model", str(tiny_model)]
    cmd += ["--out", str(tmp_path), "--no-npz", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"retinaview: model resnet18: {tiny_model}"]


def _labelled_folder(root: Path, bad: Path | None) -> Path:
    from PIL import Image

    root.mkdir()
    for k in range(4):
        Image.fromarray(reference_image()).save(root / f"eye{k}.png")
    rows = ["image,level", *(f"eye{k},{k % 5}" for k in range(4))]
    if bad is not None:
        (root / bad.name).write_bytes(bad.read_bytes())
        rows.append(f"{bad.name},1")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


EVALUATE_CASES = [
    c for c in IMAGE_CASES if c.name in ("png_truncated", "gif_named_png", "huge_header")
]


@pytest.mark.parametrize("case", EVALUATE_CASES, ids=repr)
def test_evaluate_names_the_bad_image(case, cases_folder, tiny_model, tmp_path, capsys):
    folder = _labelled_folder(tmp_path / "data", cases_folder[case.name])
    argv = ["evaluate", "--model", str(tiny_model), "--data", str(folder), "--workers", "0"]
    assert main([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"retinaview: {folder / cases_folder[case.name].name}: "), err
    assert re.search(case.match, err), err


def test_evaluate_clean_folder_works(tiny_model, tmp_path, capsys):
    folder = _labelled_folder(tmp_path / "data", None)
    argv = ["evaluate", "--model", str(tiny_model), "--data", str(folder), "--workers", "0"]
    assert main([*argv, "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4
