"""``retinaview compare`` end to end on a small ResNet-18: outputs, resume, one-line problems, sharding."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import retinaview.core.api as api
from retinaview.cli import main
from tests.helpers_models import small_checkpoint

FAST = ["--steps", "4", "--no-road", "--bootstrap", "50", "--threads", "1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


def compare(*argv) -> int:
    return main(["compare", *FAST, *map(str, argv)])


def test_synthetic_run_writes_tables_figure_and_resumes(checkpoint, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    argv = ["--model", checkpoint, "--data", "synth:2:7", "--methods", "saliency,cam", "--out", out]
    assert compare(*argv, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images_done"] == 2 and report["failed"] == 0
    for name in ("results.csv", "summary.csv", "summary.json", "summary.png"):
        assert (out / name).stat().st_size > 0
    for key in ("synth-7-00000", "synth-7-00001"):
        for method in ("saliency", "cam"):
            rows = list(csv.DictReader(open(out / "images" / key / f"{method}.csv")))
            metrics = {r["metric"] for r in rows}
            assert {"deletion_gray", "insertion_blur", "seconds", "peak_mb"} <= metrics
    groups = {(s["group"], s["method"], s["metric"]) for s in report["summary"]}
    assert ("all", "cam", "deletion_gray") in groups
    assert any(g.startswith("grade ") for g, _, _ in groups)
    for s in report["summary"]:
        assert s["lo"] <= s["mean"] + 1e-12 and s["mean"] <= s["hi"] + 1e-12
    lesion_groups = {g for g, _, _ in groups if g.startswith("lesion ")}
    synth_lesions = any(
        r["localisation"]
        for r in (json.loads(p.read_text())["classes"] for p in (out / "cache").rglob("*.json"))
        for r in r.values()
    )
    assert bool(lesion_groups) == synth_lesions

    # A second run finds every result in the cache: nothing is explained again.
    def refuse(*args, **kwargs):
        raise AssertionError("explained again although cached")

    monkeypatch.setattr(api, "explain", refuse)
    assert compare(*argv, "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["summary"] == report["summary"]


def test_a_method_failing_on_one_image_loses_nothing(checkpoint, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    real = api.explain
    calls = []

    def flaky(model, image, method="rfscore", **params):
        calls.append(method)
        if method == "cam" and len(calls) == 4:  # cam on the second image
            raise RuntimeError("out of luck")
        return real(model, image, method=method, **params)

    monkeypatch.setattr(api, "explain", flaky)
    argv = ["--model", checkpoint, "--data", "synth:2:7", "--methods", "saliency,cam", "--out", out]
    assert compare(*argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["retinaview: synth:7:1: cam failed: RuntimeError: out of luck"]
    assert (out / "cache" / "synth-7-00001" / "saliency.json").exists()
    assert not (out / "cache" / "synth-7-00001" / "cam.json").exists()
    # Resuming computes the missing result only.
    calls.clear()
    assert compare(*argv) == 0
    assert calls == ["cam"]


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_with_masks_names_each_bad_mask(checkpoint, tmp_path, capsys):
    from retinaview.core.synthetic import generate

    data, masks = tmp_path / "data", tmp_path / "masks"
    for i in range(2):
        s = generate(40 + i, grade=3, size=96)
        write_png(data / f"img{i}.png", s.image)
        union = (s.lesion_union() * 255).astype(np.uint8)
        if i == 0:
            write_png(masks / "exudates" / "img0_EX.png", union)
        else:
            write_png(masks / "exudates" / "img1.png", union[:50, :50])  # wrong size
    write_png(masks / "exudates" / "nobody.png", np.zeros((96, 96), np.uint8))
    (data / "labels.csv").write_text("image,level\nimg0,3\nimg1,3\n")
    out = tmp_path / "out"
    code = compare(
        "--model",
        checkpoint,
        "--data",
        data,
        "--masks",
        masks,
        "--methods",
        "saliency",
        "--out",
        out,
    )
    assert code == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert err[0].startswith(
        f"retinaview: {masks / 'exudates' / 'nobody.png'}: no image named nobody"
    )
    assert err[1].startswith(f"retinaview: {masks / 'exudates' / 'img1.png'}: mask is 50x50")
    rec0 = json.loads((out / "cache" / "img0" / "saliency.json").read_text())
    rec1 = json.loads((out / "cache" / "img1" / "saliency.json").read_text())
    assert rec0["grade"] == 3
    (loc,) = rec0["classes"].values()
    assert set(loc["localisation"]) == {"exudates", "any"}
    assert not next(iter(rec1["classes"].values()))["localisation"]
    assert rec1["classes"]  # the image itself was still measured


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("empty", "no images"),
        ("synth:0:1", "N must be positive"),
    ],
)
def test_empty_data_is_one_line(checkpoint, tmp_path, capsys, data, message):
    if data == "empty":
        (tmp_path / "empty").mkdir()
        data = tmp_path / "empty"
    assert (
        compare("--model", checkpoint, "--data", data, "--methods", "cam", "--out", tmp_path / "o")
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_bad_method_and_param_are_one_line(checkpoint, tmp_path, capsys):
    argv = ["--model", checkpoint, "--data", "synth:1:1", "--out", tmp_path / "o"]
    assert compare(*argv, "--methods", "nosuch") == 2
    assert "unknown explanation method 'nosuch'" in capsys.readouterr().err
    assert compare(*argv, "--methods", "ig", "--param", "ig.nosuch=1") == 2
    assert "unknown parameter 'nosuch'" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_shards_the_images_and_merges(checkpoint, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "retinaview",
        "compare",
        *FAST,
        "--model",
        str(checkpoint),
        "--data",
        "synth:3:5",
        "--methods",
        "cam",
        "--out",
        str(out),
        "--json",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["images_done"] == 3
    assert len(list((out / "cache").glob("*/cam.json"))) == 3
