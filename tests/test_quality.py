"""The model-free quality gate: clean synthetic photographs and a real fundus pass; the same photographs
blurred, darkened, over-exposed or cropped, and pictures with no fundus, fail with the right reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi
from skimage import data

from retinaview.cli import main
from retinaview.core.common.review_store import REASONS
from retinaview.core.quality import assess_quality
from retinaview.core.synthetic import generate

SIZE = 256


@pytest.fixture(scope="module")
def clean():
    return [generate(seed, grade=seed % 5, size=SIZE).image for seed in (1, 2, 3)]


def _blur(im, sigma):
    return np.stack(
        [ndi.gaussian_filter(im[..., c].astype(np.float32), sigma) for c in range(3)], -1
    ).astype(np.uint8)


def _scale(im, f):
    return np.clip(im.astype(np.float32) * f, 0, 255).astype(np.uint8)


DEGRADE = {
    "blur": (lambda im: _blur(im, 0.015 * SIZE), "out of focus"),
    "heavy blur": (lambda im: _blur(im, 0.03 * SIZE), "out of focus"),
    "dark": (lambda im: _scale(im, 0.2), "too dark"),
    "over-exposed": (lambda im: _scale(im, 3.0), "too bright"),
    "centre crop": (
        lambda im: im[SIZE // 4 : 3 * SIZE // 4, SIZE // 4 : 3 * SIZE // 4],
        "poor field",
    ),
    "side strip": (lambda im: im[:, : SIZE // 3], "poor field"),
}


def test_clean_photographs_pass(clean):
    for im in clean:
        v = assess_quality(im)
        assert v.gradable, (v.detail, v.measures)
        assert v.label == "gradable"
    retina = data.retina()
    assert assess_quality(retina).gradable
    assert assess_quality(retina[::4, ::4]).gradable  # the measures do not depend on the size


@pytest.mark.parametrize("kind", list(DEGRADE))
def test_degraded_photographs_fail_with_their_reason(clean, kind):
    degrade, reason = DEGRADE[kind]
    for im in clean:
        v = assess_quality(degrade(im))
        assert not v.gradable and v.reason == reason, (kind, v.reason, v.detail)
        assert v.label == f"ungradable: {reason}" and v.detail


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("black", "too dark"),
        ("white", "too bright"),
        ("noise", "poor field"),
        ("astronaut", "poor field"),
        ("chelsea", "poor field"),
    ],
)
def test_pictures_without_a_fundus_fail(name, reason):
    pictures = {
        "black": lambda: np.zeros((200, 300, 3), np.uint8),
        "white": lambda: np.full((200, 300, 3), 255, np.uint8),
        "noise": lambda: np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "astronaut": data.astronaut,
        "chelsea": data.chelsea,
    }
    v = assess_quality(pictures[name]())
    assert not v.gradable and v.reason == reason, (v.reason, v.detail, v.measures)
    assert v.reason in REASONS


def test_verdict_is_json_ready(clean):
    d = assess_quality(_scale(clean[0], 0.2)).as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["gradable"] is False and d["reason"] == "too dark" and "brightness" in d["measures"]


def test_explain_json_carries_the_quality_verdict(tmp_path, capsys):
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(black)
    args = ["explain", str(black), "--model", "paper17", "--no-npz", "--json"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["quality"] == {"gradable": False, "reason": "too dark"}


def test_review_quality_command_stores_verdicts(tmp_path, capsys, monkeypatch, clean):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(clean[0]).save(folder / "good.png")
    Image.fromarray(_blur(clean[0], 4)).save(folder / "blurred.png")
    assert main(["review", "quality", str(folder), "--json", "--store"]) == 0
    lines = {
        json.loads(x)["file"].split("/")[-1]: json.loads(x)
        for x in capsys.readouterr().out.split("\n")
        if x
    }
    assert lines["good.png"]["gradable"] and lines["blurred.png"]["reason"] == "out of focus"
    from retinaview.core.common.review_store import ReviewStore

    with ReviewStore.for_folder(folder) as store:
        assert store.quality() == {"good.png": (True, None), "blurred.png": (False, "out of focus")}
