"""`retinaview segment`: vessel maps at the photograph's resolution, npz, JSON lines, bad models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from retinaview.cli import main
from retinaview.core.checkpoint import save_checkpoint
from retinaview.core.models.registry import build_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def vessel_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = {"num_classes": 1, "width": 0.0625, "input_size": 64, "task": "vessels"}
    model, spec = build_model("driu", config)
    return save_checkpoint(tmp_path_factory.mktemp("m") / "driu.pt", model, spec)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from retinaview.core.synthetic import generate

    path = tmp_path_factory.mktemp("img") / "eye.png"
    Image.fromarray(generate(4, size=120).image).save(path)
    return path


def test_segment_writes_png_npz_and_json(tmp_path, vessel_checkpoint, photo, capsys):
    from retinaview.core.model_loading import load_model
    from retinaview.core.segment import segment

    out = tmp_path / "out"
    code = main(
        ["segment", str(photo), "--model", str(vessel_checkpoint), "--out", str(out), "--json"]
    )
    assert code == 0
    png = np.asarray(Image.open(out / "eye_vessels.png"))
    assert png.shape == (120, 120)
    with np.load(out / "eye_vessels.npz") as z:
        assert z["probability"].shape == z["logits"].shape == z["fov"].shape == (64, 64)
        assert np.allclose(
            z["probability"], 1 / (1 + np.exp(-z["logits"].astype(np.float64))), atol=1e-6
        )
    line = json.loads(capsys.readouterr().out.strip())
    seg = segment(load_model(vessel_checkpoint), str(photo))
    assert line["vessel_area_fraction"] == pytest.approx(seg.area_fraction(), abs=1e-6)


def test_a_grader_or_a_missing_bundled_model_is_one_line(tmp_path, photo, capsys, monkeypatch):
    code = main(["segment", str(photo), "--model", "paper17", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "not a vessel segmentation model" in err[-1] and len(err) == 1
    import retinaview.core.segment as seg

    monkeypatch.setattr(seg, "BUNDLED_VESSEL_MODEL", tmp_path / "none.pt")
    assert main(["segment", str(photo), "--out", str(tmp_path)]) == 2
    assert "no bundled vessel model" in capsys.readouterr().err


def test_reweight_experiment_restores_weights_and_factor_one_is_the_model(
    vessel_checkpoint, capsys
):
    from retinaview.core.model_loading import load_model
    from retinaview.train.vessels import reweight_experiment

    model = load_model(vessel_checkpoint)
    rows = reweight_experiment(model, model.spec, "synth:2:7", [0.0, 1.0])
    assert len(rows) == 8 and torch.equal(model.branch_weights, torch.ones(4))
    ones = [r for r in rows if r["factor"] == 1.0]
    assert all(
        r["miou"] == ones[0]["miou"] for r in ones
    )  # factor 1 on any branch: the same network
    code = main(["vessels-reweight", "--model", str(vessel_checkpoint), "--data", "synth:1:7",
                 "--factors", "0,1", "--json"])  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 8 and json.loads(lines[0])["label"] == "conv1_2"


def test_evaluate_task_vessels_reports_masked_figures(vessel_checkpoint, capsys):
    args = [
        "evaluate",
        "--task",
        "vessels",
        "--model",
        str(vessel_checkpoint),
        "--data",
        "synth:1:3",
        "--json",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["images"] == 1 and 0 <= report["f1"] <= 1 and 0 <= report["miou"] <= 1
    assert report["threshold"] == 0.5  # the fixture's checkpoint chose none
