"""Data sources: labels CSV parsing and its one-line errors, patient split, sampling, caching."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from retinaview.core import synthetic
from retinaview.core.common.errors import DataError
from retinaview.train import data


def make_folder(tmp_path, names, csv_text, ext=".png"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        img = np.zeros((60, 80, 3), np.uint8)
        yy, xx = np.mgrid[:60, :80]
        img[((yy - 30) ** 2 + (xx - 40) ** 2) < 26**2] = (180, 90, 40)
        img += rng.integers(0, 20, img.shape, dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / f"{name}{ext}")
    (tmp_path / "labels.csv").write_text(csv_text)
    return tmp_path


def test_eyepacs_csv_pairs_and_extensionless_names(tmp_path):
    make_folder(
        tmp_path,
        ["10_left", "10_right", "13_left"],
        "image,level\n10_left,0\n10_right,2\n13_left,4\n",
    )
    recs = data.load_folder(tmp_path)
    assert [(r.name, r.grade, r.patient, r.eye) for r in recs] == [
        ("10_left", 0, "10", "left"),
        ("10_right", 2, "10", "right"),
        ("13_left", 4, "13", "left"),
    ]
    assert recs[0].path.name == "10_left.png"


def test_aptos_header_detected(tmp_path):
    make_folder(tmp_path, ["abc"], "id_code,diagnosis\nabc,3\n", ext=".jpg")
    (r,) = data.load_folder(tmp_path)
    assert (r.name, r.grade, r.eye) == ("abc", 3, None)


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("", "labels.csv: empty file"),
        ("image,level\n", "labels.csv: no rows"),
        ("name,grade\na,1\n", "labels.csv line 1: expected columns"),
        ("image,level\na,0\nb,x\n", "labels.csv line 3: label 'x' is not a grade 0-4"),
        ("image,level\na,0\nb,7\n", "labels.csv line 3: label '7' is not a grade 0-4"),
        (
            "image,level\na,0\na,1\n",
            "labels.csv line 3: image 'a' is listed twice (first on line 2)",
        ),
        ("image,level\na,0\nmissing,1\n", "labels.csv line 3: image 'missing' not found"),
        ("image,level\na,0,5\n", "labels.csv line 2: expected 2 fields, found 3"),
    ],
)
def test_csv_errors_name_the_line(tmp_path, csv_text, message):
    make_folder(tmp_path, ["a", "b"], csv_text)
    with pytest.raises(DataError) as err:
        data.load_folder(tmp_path)
    text = str(err.value)
    # The file is named with its folder: "labels.csv" alone does not say which data set.
    assert text.startswith(str(tmp_path / message)) and "\n" not in text


def test_split_by_patient_keeps_eyes_together():
    recs = [
        data.Record(path=None, grade=0, name=f"{p}_{e}", patient=str(p), eye=e)
        for p in range(40)
        for e in ("left", "right")
    ]
    train, val = data.split_by_patient(recs, 0.25, seed=3)
    assert len(val) == 20 and len(train) == 60
    assert not {r.patient for r in train} & {r.patient for r in val}
    assert data.split_by_patient(recs, 0.25, seed=3) == (train, val)


def test_sources_and_balance_parsing(tmp_path):
    assert data.parse_source("synth:10") == data.SynthSource(10, 0)
    assert data.parse_source("synth:10:7") == data.SynthSource(10, 7)
    for bad in ("synth:x", "synth:0:1", "synth:1:2:3", str(tmp_path / "nope")):
        with pytest.raises(DataError):
            data.parse_source(bad)
    assert data.parse_balance("none") is None
    assert data.parse_balance("equal") == (0.2,) * 5
    assert sum(data.parse_balance("0.5,0.0625,0.125,0.0625,0.25")) == pytest.approx(1)
    with pytest.raises(DataError):
        data.parse_balance("1,2")


def test_sampler_partitions_and_resumes():
    full = data.EpochBatchSampler(20, 3, seed=1, drop_last=False)
    ranks = [
        data.EpochBatchSampler(20, 3, seed=1, rank=r, world=2, drop_last=False) for r in (0, 1)
    ]
    seen = sorted(i for s in ranks for b in s for _, i in b)
    assert seen == list(range(20))
    assert sorted(i for b in full for _, i in b) == list(range(20))
    s = data.EpochBatchSampler(20, 3, seed=1)
    s.set_epoch(2)
    batches = list(s)
    s.set_epoch(2, start_batch=4)
    assert list(s) == batches[4:]
    s.set_epoch(3)
    assert list(s) != batches and all(k[0] == 3 for b in s for k in b)


def test_balanced_weights_give_target_proportions():
    grades = [0] * 90 + [1] * 10
    w = data.EpochBatchSampler(
        100, 100, seed=0, weights=data.balance_weights(grades, (0.5, 0.5, 0, 0, 0))
    )
    drawn = [grades[i] for _, i in next(iter(w))]
    assert 30 < sum(drawn) < 70


def _tree(folder):
    return sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_folder_dataset_caches_preprocessing_in_the_user_cache(tmp_path, monkeypatch):
    images = make_folder(
        tmp_path / "images", ["1_left", "1_right"], "image,level\n1_left,1\n1_right,2\n"
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = _tree(images)
    ds = data.build_dataset(str(images), size=32, chain="paper")
    x, g = ds[(0, 1)]
    assert x.shape == (3, 32, 32) and x.dtype.is_floating_point is False and g == 2
    cached = list((tmp_path / "cache" / "retinaview" / "preprocessed").glob("*.npy"))
    assert len(cached) == 1 and cached[0].name.endswith("_paper_32.npy")
    x2, _ = ds[(5, 1)]
    assert (x2 == x).all()
    assert _tree(images) == before  # derived data never goes into the image folder


def test_read_only_image_folder_stays_untouched(tmp_path, monkeypatch):
    images = make_folder(tmp_path / "images", ["3_left"], "image,level\n3_left,3\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = _tree(images)
    images.chmod(0o555)
    try:
        x, g = data.build_dataset(str(images), size=32, chain="paper")[0]
    finally:
        images.chmod(0o755)
    assert g == 3 and x.shape == (3, 32, 32)
    assert _tree(images) == before
    assert len(list((tmp_path / "cache" / "retinaview" / "preprocessed").glob("*.npy"))) == 1


def test_synth_dataset_is_deterministic_and_balanced():
    ds = data.SynthDataset(6, seed=2, size=64, proportions=(0, 0, 0, 0, 1), fresh=True)
    a, ga = ds[(0, 1)]
    b, gb = ds[(0, 1)]
    c, _ = ds[(1, 1)]
    assert (a == b).all() and ga == gb == 4 and a.shape == (3, 64, 64)
    assert not (a == c).all()
    plain = data.SynthDataset(6, seed=2, size=64)
    image, grade = plain.sample(0, 3)
    ref = synthetic.generate(2 * data.SEED_STRIDE + 3, size=64)
    assert grade == ref.grade


def test_synthetic_training_input_is_the_viewers_input():
    """Training, evaluation, the CLI and the viewer share one input path: the model's preprocessing chain
    (field-of-view crop included) applied to the generated photograph, not the raw photograph."""
    from retinaview.core.preprocess import preprocess
    from retinaview.core.synthetic import generate

    ds = data.SynthDataset(6, seed=2, size=96)
    image, _ = ds.sample(0, 3)
    photo = generate(2 * data.SEED_STRIDE + 3, size=96).image
    viewer = np.clip(preprocess(photo, chain="paper", size=96).image * 255.0 + 0.5, 0, 255)
    assert np.array_equal(image, viewer.astype(np.uint8))
    assert not np.array_equal(image, photo)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "synth:x"], "synth:x: expected synth:N"),
        (["--data", "synth:30:0", "--balance", "1,2"], "--balance 1,2: expected 5"),
        (["--data", "synth:30:0", "--lr-steps", "a"], "--lr-steps a: expected epoch numbers"),
    ],
)
def test_train_command_bad_input_is_one_line(tmp_path, capsys, args, message):
    from retinaview.cli import main

    assert main(["train", "--out", str(tmp_path / "r"), "--workers", "0", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"retinaview: {message}") and err.count("\n") == 1
