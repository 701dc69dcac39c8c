"""Vessel training: the class-balanced loss by hand, a short run that learns, and an exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from retinaview.core.common.errors import DataError
from retinaview.train.vessels import (
    VesselTrainConfig,
    balanced_bce,
    masked_bce,
    synthetic_item,
    train_vessels,
)

torch.set_num_threads(1)


def test_balanced_cross_entropy_by_hand():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])  # the last pixel is outside the field of view

    def ce(z, t):
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    # 3 pixels inside, 1 vessel: beta (background share) = 2/3 weighs the vessel, 1/3 the background
    want = (2 / 3 * ce(2.0, 1) + 1 / 3 * ce(-1.0, 0) + 1 / 3 * ce(0.5, 0)) / 3
    assert balanced_bce(logits, target, mask).item() == pytest.approx(want, rel=1e-6)
    plain = (ce(2.0, 1) + ce(-1.0, 0) + ce(0.5, 0)) / 3
    assert masked_bce(logits, target, mask).item() == pytest.approx(plain, rel=1e-6)


def test_synthetic_item_maps_vessels_into_the_model_input():
    item = synthetic_item(3, 96, "vessels")
    assert item.image.shape == (96, 96, 3) and item.vessels.shape == item.fov.shape == (96, 96)
    assert item.vessels.any() and not (item.vessels & ~item.fov).any()
    # vessels are dark in the photograph, so bright after the chain's inversion
    assert (
        item.image[..., 1][item.vessels].mean()
        > item.image[..., 1][item.fov & ~item.vessels].mean()
    )


def test_short_run_learns_and_resumes_exactly(tmp_path):
    def cfg(out, epochs, resume=False):
        return VesselTrainConfig(
            out=str(out),
            width=0.0625,
            data="synth:3:0",
            val="synth:2:1000",
            size=64,
            crop=32,
            crops_per_image=2,
            batch=4,
            epochs=epochs,
            lr=3e-3,
            resume=resume,
        )

    straight = train_vessels(cfg(tmp_path / "a", 3))
    assert straight["status"] == "done" and straight["epochs"] == 3
    train_vessels(cfg(tmp_path / "b", 2))
    resumed = train_vessels(cfg(tmp_path / "b", 3, resume=True))
    assert resumed["epochs"] == 3
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [line for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 3
    with pytest.raises(DataError, match="already holds a run"):
        train_vessels(cfg(tmp_path / "a", 3))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("crop", 30, "--crop 30"),
        ("loss", "dice", "--loss dice"),
        ("data", "synth:0", "synth:0"),
        ("lr", float("nan"), "--lr nan"),
    ],
)
def test_bad_options_are_one_line(field, value, message):
    cfg = VesselTrainConfig()
    setattr(cfg, field, value)
    with pytest.raises(DataError, match=message):
        cfg.check()


def test_train_command_with_task_vessels(tmp_path, capsys):
    from retinaview.cli import main

    args = ["train", "--task", "vessels", "--data", "synth:2:0", "--val", "synth:1:9", "--size", "64",
            "--crop", "32", "--width", "0.0625", "--epochs", "1", "--batch", "4", "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    payload = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert payload["arch"] == "driu" and payload["config"]["task"] == "vessels"
    assert 0 < payload["config"]["threshold"] < 1
    assert main([*args, "--crop", "30", "--out", str(tmp_path / "bad")]) == 2
    assert "--crop 30" in capsys.readouterr().err
