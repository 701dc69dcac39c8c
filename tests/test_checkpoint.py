"""Checkpoints: round trip, atomic write, and one-line errors for every bad file."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from retinaview.core.checkpoint import load_checkpoint, save_checkpoint
from retinaview.core.common.errors import CheckpointError
from retinaview.core.model_loading import load_model
from retinaview.core.models.registry import build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model, spec = build_model("resnet18")
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model, spec, metrics={"qwk": 0.5}, provenance={"data": "synth:10:1"})
    return path, model


def test_round_trip(saved):
    path, model = saved
    loaded, spec, payload = load_checkpoint(path)
    assert spec.arch == "resnet18"
    assert payload["metrics"] == {"qwk": 0.5}
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    m = load_model(path)
    assert not m.training
    assert m.spec.source == str(path)
    assert not list(path.parent.glob(".*.tmp"))


def test_truncated(saved, tmp_path):
    path, _ = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt: .*(truncated|corrupt|not a model)"):
        load_checkpoint(cut)


def test_wrong_architecture(saved, tmp_path):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["arch"] = "paper17"
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    with pytest.raises(
        CheckpointError, match=r"other\.pt: weights do not fit architecture 'paper17'"
    ):
        load_checkpoint(other)
    payload["arch"] = "vgg99"
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match="unknown architecture 'vgg99'"):
        load_checkpoint(other)


class Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_that_runs_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "retinaview-checkpoint", "payload": Exploit(str(marker))}, evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused"):
        load_checkpoint(evil)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Exploit(str(marker))))
    with pytest.raises(CheckpointError, match=r"raw\.pt"):
        load_checkpoint(raw)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello", r"not a retinaview checkpoint \(it looks like text\)"),
        (None, "no such file"),
    ],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_not_a_retinaview_checkpoint(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a retinaview checkpoint"):
        load_checkpoint(path)


def test_unknown_name():
    with pytest.raises(CheckpointError, match="no such model file or architecture"):
        load_model("nonexistent-model")
