"""The synthetic fundus generator: determinism, clinical grading rules, ground truth, data-set writer, CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from retinaview.core.synthetic import (
    DEFAULT_CLASS_FREQUENCIES,
    LESION_TYPES,
    SynthSample,
    draw_grade,
    draw_patient_grades,
    generate,
    load_groundtruth,
    patient_joint,
    write_dataset,
)
from retinaview.core.synthetic.grading import quadrants_with

SIZE = 256
SEEDS = range(6)


def _quadrants(s: SynthSample) -> set[int]:
    return quadrants_with(s.lesions["haemorrhages"], *s.fov_center)


@pytest.fixture(scope="module")
def samples() -> dict[int, list[SynthSample]]:
    return {g: [generate(1000 + i, grade=g, size=SIZE) for i in SEEDS] for g in range(5)}


def test_public_constants():
    assert LESION_TYPES == (
        "microaneurysms",
        "haemorrhages",
        "hard_exudates",
        "cotton_wool_spots",
        "venous_beading",
        "new_vessels",
    )
    assert DEFAULT_CLASS_FREQUENCIES == (0.73, 0.07, 0.15, 0.025, 0.025)


def test_sample_shapes_and_types(samples):
    s = samples[2][0]
    assert s.image.shape == (SIZE, SIZE, 3) and s.image.dtype == np.uint8
    assert set(s.lesions) == set(LESION_TYPES)
    for m in (*s.lesions.values(), s.vessels, s.fov, s.lesion_union()):
        assert m.shape == (SIZE, SIZE) and m.dtype == bool
    assert s.eye in ("left", "right")
    assert s.grade == 2 and s.seed == 1000
    # black outside the field of view, bright inside
    from scipy.ndimage import binary_dilation

    assert s.image[~binary_dilation(s.fov, iterations=3)].max() <= 12
    assert s.image[s.fov].mean() > 40
    # the disc is left of the fovea in left eyes, right of it in right eyes
    assert (s.disc_center[0] < s.fovea_center[0]) == (s.eye == "left")
    assert 0.2 < abs(s.disc_center[0] - s.fovea_center[0]) / SIZE < 0.35


def test_deterministic():
    a = generate(7, grade=3, size=SIZE)
    b = generate(7, grade=3, size=SIZE)
    assert np.array_equal(a.image, b.image)
    for k in LESION_TYPES:
        assert np.array_equal(a.lesions[k], b.lesions[k])
    assert np.array_equal(a.vessels, b.vessels)
    assert a.disc_center == b.disc_center and a.eye == b.eye
    c = generate(8, grade=3, size=SIZE)
    assert not np.array_equal(a.image, c.image)


def test_eye_and_other_sizes():
    s = generate(3, grade=0, size=128, eye="right")
    assert s.eye == "right" and s.image.shape == (128, 128, 3)
    assert s.disc_center[0] > s.fovea_center[0]
    with pytest.raises(ValueError):
        generate(3, grade=5, size=128)


def test_grade0_has_no_lesions(samples):
    for s in samples[0]:
        assert not s.lesion_union().any()
        assert s.vessels.sum() > 0.03 * s.fov.sum()


def test_grade1_only_microaneurysms(samples):
    for s in samples[1]:
        assert s.lesions["microaneurysms"].any()
        assert not any(s.lesions[k].any() for k in LESION_TYPES if k != "microaneurysms")


def test_grade2_moderate(samples):
    for s in samples[2]:
        assert s.lesions["microaneurysms"].any()
        assert 1 <= len(_quadrants(s)) <= 3
        assert not s.lesions["new_vessels"].any()
        assert not s.lesions["venous_beading"].any()


def test_grade3_severe(samples):
    for s in samples[3]:
        assert len(_quadrants(s)) == 4 or s.lesions["venous_beading"].any()
        assert not s.lesions["new_vessels"].any()
    # over a few samples both kinds appear
    assert any(s.lesions["venous_beading"].any() for s in samples[3] + samples[4])


def test_grade4_proliferative(samples):
    for s in samples[4]:
        assert s.lesions["new_vessels"].any() or s.findings["preretinal_haemorrhage"]


def test_lesions_inside_fov_and_beading_on_vessels(samples):
    for g in range(5):
        for s in samples[g]:
            assert not (s.lesion_union() & ~s.fov).any()
            assert not (s.vessels & ~s.fov).any()
            # a beaded segment is part of a vein
            assert not (s.lesions["venous_beading"] & ~s.vessels).any()


def test_lesions_visible_at_640():
    """Red lesions are darker than the background around them (green channel), bright ones brighter."""
    s = generate(21, grade=3, size=640)
    green = s.image[..., 1].astype(float)
    background = np.median(green[s.fov & ~s.vessels & ~s.lesion_union()])
    assert green[s.lesions["haemorrhages"]].mean() < 0.8 * background
    if s.lesions["hard_exudates"].any():
        assert green[s.lesions["hard_exudates"]].mean() > 1.3 * background
    ma = s.lesions["microaneurysms"]
    assert ma.any() and green[ma].mean() < 0.85 * background


def test_grade_sampler_matches_frequencies():
    rng = np.random.default_rng(0)
    n = 20000
    counts = np.bincount([draw_grade(rng) for _ in range(n)], minlength=5) / n
    assert np.allclose(counts, DEFAULT_CLASS_FREQUENCIES, atol=0.01)
    freqs = (0.2, 0.2, 0.2, 0.2, 0.2)
    counts = np.bincount([draw_grade(rng, freqs) for _ in range(5000)], minlength=5) / 5000
    assert np.allclose(counts, freqs, atol=0.025)
    assert generate(5, size=96, frequencies=(0, 0, 1, 0, 0)).grade == 2


def test_patient_grades_correlated():
    J = patient_joint()
    assert np.allclose(J, J.T)
    assert np.allclose(J.sum(1), DEFAULT_CLASS_FREQUENCIES, atol=1e-6)
    near = sum(J[a, b] for a in range(5) for b in range(5) if abs(a - b) <= 1)
    assert np.trace(J) > 0.75 and near > 0.97
    rng = np.random.default_rng(1)
    pairs = np.array([draw_patient_grades(rng) for _ in range(3000)])
    assert np.mean(np.abs(pairs[:, 0] - pairs[:, 1]) <= 1) > 0.95


def test_arteries_thinner_than_veins():
    from retinaview.core.synthetic import fundus, vessels

    for seed in range(4):
        rng = np.random.default_rng(seed)
        lay = fundus.make_layout(rng, 640)
        tree = vessels.grow_tree(rng, lay)
        mean_r = {}
        for kind in (vessels.ARTERY, vessels.VEIN):
            r = np.concatenate([v.r for v in tree if v.kind == kind and v.order == 0])
            mean_r[kind] = r.mean()
        assert mean_r[vessels.ARTERY] < 0.9 * mean_r[vessels.VEIN]
    s = generate(4, grade=0, size=SIZE)
    veins = s.vessels & ~s.arteries
    assert s.arteries.sum() < veins.sum()


def test_write_dataset_round_trip(tmp_path):
    labels = write_dataset(tmp_path / "ds", n=3, seed=5, size=96)
    with labels.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["image", "level"]
    assert [r[0] for r in rows[1:]] == [f"synth_5_{i:05d}" for i in range(3)]
    for name, level in rows[1:]:
        assert (tmp_path / "ds" / f"{name}.png").exists()
        gt = load_groundtruth(tmp_path / "ds" / "groundtruth" / f"{name}.npz")
        assert gt.grade == int(level)
        again = generate(gt.seed, grade=gt.grade, size=96, eye=gt.eye)
        assert np.array_equal(gt.image, again.image)
        for k in LESION_TYPES:
            assert np.array_equal(gt.lesions[k], again.lesions[k])
        assert np.array_equal(gt.vessels, again.vessels) and np.array_equal(gt.fov, again.fov)
        assert np.allclose(gt.disc_center, again.disc_center, atol=1e-3)
        assert np.allclose(gt.fovea_center, again.fovea_center, atol=1e-3)
    # same seed -> same data set
    labels2 = write_dataset(tmp_path / "ds2", n=3, seed=5, size=96, fmt="jpg")
    assert labels2.read_text() == labels.read_text()
    assert (tmp_path / "ds2" / "synth_5_00000.jpg").exists()


def test_write_dataset_patients(tmp_path):
    labels = write_dataset(tmp_path, n=4, seed=9, size=80, patients=True)
    with labels.open() as fh:
        rows = list(csv.DictReader(fh))
    names = [r["image"] for r in rows]
    assert names == ["p9_00000_left", "p9_00000_right", "p9_00001_left", "p9_00001_right"]
    for r in rows:
        gt = load_groundtruth(tmp_path / "groundtruth" / f"{r['image']}.npz", load_image=False)
        assert gt.eye == r["image"].rsplit("_", 1)[1]
        assert gt.grade == int(r["level"])


def test_cli(tmp_path, capsys):
    from retinaview.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "--n", "2", "--seed", "3", "--out", str(out), "--size", "64"]) == 0
    assert (out / "labels.csv").exists() and (out / "groundtruth" / "synth_3_00001.npz").exists()
    assert main(["synth", "--n", "0", "--seed", "3", "--out", str(out)]) == 2
    assert (
        main(["synth", "--n", "2", "--seed", "3", "--out", str(out), "--frequencies", "1,2"]) == 2
    )
    assert (
        main(["synth", "--n", "2", "--seed", "3", "--out", str(out), "--frequencies", "a,b,c,d,e"])
        == 2
    )
    assert main(["synth", "--n", "2", "--seed", "-1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "retinaview: --frequencies" in err
