"""Fuzzing labels CSVs: every case of `tests.fuzz_inputs.CSV_CASES` through ``retinaview evaluate`` and
``retinaview train`` (``--labels``) and the desktop app's folder opening. A bad file is one line naming it
with its folder (``labels.csv`` alone does not say which data set), refused before any grading or training.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from retinaview.cli import main
from tests.fuzz_inputs import CSV_CASES, reference_image, tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _data(tmp_path: Path, case) -> tuple[Path, Path]:
    images = tmp_path / "images"
    images.mkdir()
    for k in range(4):
        Image.fromarray(reference_image()).save(images / f"eye{k}.png")
    labels_dir = tmp_path / "labels folder"
    labels_dir.mkdir()
    return images, case.make(labels_dir)


def test_enough_cases():
    assert len(CSV_CASES) >= 15


@pytest.mark.parametrize("case", CSV_CASES, ids=repr)
def test_evaluate(case, tiny_model, tmp_path, capsys):
    images, labels = _data(tmp_path, case)
    argv = ["evaluate", "--model", str(tiny_model), "--data", str(images), "--labels", str(labels)]
    code = main([*argv, "--workers", "0", "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    if case.expect == "ok":
        assert code == 0, err
        assert json.loads(out)["n"] in (2, 4)
        return
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"retinaview: {labels}"), err
    assert re.search(case.match, lines[0]), lines[0]


@pytest.mark.parametrize("case", [c for c in CSV_CASES if c.expect == "reject"], ids=repr)
def test_train(case, tmp_path, capsys):
    images, labels = _data(tmp_path, case)
    argv = ["train", "--data", str(images), "--labels", str(labels), "--out", str(tmp_path / "run")]
    assert main([*argv, "--epochs", "1", "--workers", "0", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"retinaview: {labels}"), lines
    assert re.search(case.match, lines[0]), lines[0]
    assert not (tmp_path / "run" / "last.pt").exists()
