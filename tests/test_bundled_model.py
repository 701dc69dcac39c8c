"""The bundled default model loads and reaches the QWK its model card states."""

from __future__ import annotations

import pytest

from retinaview.core.checkpoint import read_checkpoint
from retinaview.core.model_loading import DEFAULT_MODEL, load_model


@pytest.fixture(scope="module")
def payload():
    assert DEFAULT_MODEL.is_file(), "the bundled model is missing from resources/models"
    return read_checkpoint(DEFAULT_MODEL)


def test_default_is_the_bundled_model(payload):
    model = load_model("default", device="cpu")
    assert model.spec.arch == "paper17"
    assert model.spec.source.startswith("bundled model")
    assert not model.training


def test_bundled_model_reaches_its_stated_qwk(payload):
    from retinaview.train.evaluate import evaluate

    stated = payload["metrics"]["smoke"]
    report = evaluate(load_model("default", device="cpu"), stated["data"], workers=0)
    assert report["n"] == 40
    # Same images, same weights: only float rounding across CPUs may move a borderline image.
    assert report["qwk"] >= stated["qwk"] - 0.03
    assert report["accuracy"] >= stated["accuracy"] - 0.05


def test_model_card_matches_the_checkpoint(payload):
    card = (DEFAULT_MODEL.parent / "MODEL_CARD.md").read_text()
    test = payload["metrics"]["test"]
    assert f"{test['qwk']:.3f}" in card
    assert "Not a medical device" in card


def test_model_card_and_readme_show_recall_per_grade(payload):
    """The headline accuracy is carried by grade 0: the card and the README give each grade's recall too."""
    from pathlib import Path

    from retinaview.train.bundle import model_card

    metrics = payload["metrics"]
    test = metrics["test"]
    card = (DEFAULT_MODEL.parent / "MODEL_CARD.md").read_text()
    assert card == model_card(metrics, payload["provenance"], _history())
    for c in test["per_class"]:
        assert f"| {c['grade']} | {c['support']} | {c['sensitivity']:.3f} |" in card
    assert f"{test['balanced_accuracy']:.3f}" in card
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    recalls = ", ".join(f"{c['sensitivity']:.2f}" for c in test["per_class"])
    assert f"accuracy {test['accuracy']:.3f}" in readme and recalls in readme


def _history() -> list[dict]:
    import json
    from pathlib import Path

    run = Path(__file__).parents[1] / "training" / "paper17-synth" / "metrics.jsonl"
    return [json.loads(line) for line in run.read_text().splitlines() if line]
