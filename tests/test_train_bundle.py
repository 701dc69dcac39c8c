"""Making the bundled model from a run: a given evaluation report is used as is, localisation is kept only
for the same weights, and the card shows each grade's recall."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from retinaview.core import synthetic
from retinaview.core.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from retinaview.core.common.errors import DataError
from retinaview.core.models.registry import build_model
from retinaview.train import bundle
from retinaview.train.metrics import grading_report
from tests.helpers_train import fake_generate

LOCALISATION = {"per_grade": {}, "method": "rfscore", "margin_px": 4, "enrichment": 5.0}


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "generate", fake_generate)
    monkeypatch.setattr(bundle, "SMOKE_DATA", "synth:2:2001")
    torch.manual_seed(0)
    model, spec = build_model("paper17")
    run = tmp_path / "run"
    save_checkpoint(run / "best.pt", model.eval(), spec, metrics={"val_qwk": 0.5, "epoch": 1})
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_qwk": 0.5}) + "\n")
    return run


def report(data: str = bundle.TEST_DATA) -> dict:
    y = np.array([0] * 8 + [1, 2, 3, 4])
    probs = np.eye(5)[[0] * 8 + [1, 1, 3, 2]]
    return {**grading_report(y, probs), "data": data}


def test_bundle_uses_the_report_and_keeps_localisation_of_the_same_weights(run_dir, tmp_path):
    out = tmp_path / "models" / "m.pt"
    model_payload = read_checkpoint(run_dir / "best.pt")
    model, spec, _ = load_checkpoint(run_dir / "best.pt")
    save_checkpoint(out, model, spec, metrics={"localisation": LOCALISATION})
    metrics = bundle.bundle(
        run_dir, out, test_report=report(), keep_localisation=True, notes="A note."
    )
    assert metrics["localisation"] == LOCALISATION
    assert metrics["test"]["n"] == 12 and metrics["test"]["balanced_accuracy"] == pytest.approx(0.6)
    stored = read_checkpoint(out)
    assert stored["metrics"]["test"] == metrics["test"]
    for k, v in model_payload["state_dict"].items():
        assert torch.equal(stored["state_dict"][k], v)
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert (
        "| 0 | 8 | 1.000 |" in card and "| 2 | 1 | 0.000 |" in card and "| 1 | 1 | 1.000 |" in card
    )
    assert "A note." in card and "| 0.600 |" in card


def test_bundle_refuses_a_report_on_other_data_and_localisation_of_other_weights(run_dir, tmp_path):
    with pytest.raises(DataError, match="synth:9:9"):
        bundle.bundle(run_dir, tmp_path / "m.pt", test_report=report("synth:9:9"))
    torch.manual_seed(1)
    other, spec = build_model("paper17")
    out = save_checkpoint(
        tmp_path / "other.pt", other, spec, metrics={"localisation": LOCALISATION}
    )
    with pytest.raises(DataError, match="other weights"):
        bundle.bundle(run_dir, out, test_report=report(), keep_localisation=True)
