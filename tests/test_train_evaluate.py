"""`retinaview evaluate --json` keys and numbers, per-patient QWK, and the both-eyes head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from retinaview.cli import main
from retinaview.core import synthetic
from retinaview.core.checkpoint import save_checkpoint
from retinaview.core.models.registry import build_model
from retinaview.train.metrics import quadratic_weighted_kappa
from retinaview.train.patient import PatientHead, fit_head, load_head
from retinaview.train.predict import pair_features
from tests.helpers_train import fake_generate


@pytest.fixture
def model_file(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "generate", fake_generate)
    torch.manual_seed(0)
    model, spec = build_model("paper17")
    return save_checkpoint(tmp_path / "m.pt", model.eval(), spec, metrics={"val_qwk": 0.5})


def test_evaluate_json_keys(model_file, capsys):
    rc = main(
        [
            "evaluate",
            "--model",
            str(model_file),
            "--data",
            "synth:4:2000",
            "--json",
            "--workers",
            "0",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert {"qwk", "accuracy", "confusion", "per_class", "referable", "n"} <= report.keys()
    assert report["n"] == 4 and sum(map(sum, report["confusion"])) == 4
    assert {"sensitivity", "specificity", "auc"} <= report["referable"].keys()
    assert len(report["per_class"]) == 5


def test_train_patient_head_and_per_patient_report(model_file, tmp_path, capsys):
    out = tmp_path / "head.pt"
    rc = main(
        [
            "train-patient",
            "--model",
            str(model_file),
            "--data",
            "synth:4:3",
            "--out",
            str(out),
            "--json",
            "--workers",
            "0",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train_patients"] == 4 and "train_both_eyes_qwk" in report
    assert load_head(out).weight.shape == (5, 128)
    rc = main(
        [
            "evaluate",
            "--model",
            str(model_file),
            "--data",
            "synthpairs:2:7",
            "--workers",
            "0",
            "--patient-head",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "per-patient QWK" in text and "both-eyes head" in text and "referable DR" in text
    assert "recall per grade: 0: " in text and "balanced accuracy" in text


def test_bad_model_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"nope")
    assert main(["evaluate", "--model", str(bad), "--data", "synth:2:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("retinaview: ") and "\n" not in err


def test_head_learns_from_the_fellow_eye():
    # Eye grade is in feature 0 of its own eye, plus noise; the fellow eye's feature helps when they agree.
    rng = np.random.default_rng(0)
    grades = rng.integers(0, 5, 200)
    pairs = np.stack([np.arange(0, 200, 2), np.arange(1, 200, 2)], 1)
    grades[pairs[:, 1]] = grades[pairs[:, 0]]
    feats = rng.normal(size=(200, 4))
    feats[:, 0] += grades * 1.0
    x, y = pair_features(feats, grades, pairs)
    head = fit_head(x, y)
    assert isinstance(head, PatientHead)
    own_only = quadratic_weighted_kappa(y, np.clip(np.round(x[:, 0]), 0, 4))
    assert quadratic_weighted_kappa(y, head.predict_proba(x).argmax(1)) > own_only
