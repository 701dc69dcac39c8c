"""The PDF report: rendered with poppler's pdftoppm (the page is not blank, the map's colours are on it) and
read back with pdftotext (every field the report promises is printed)."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retinaview.core.common.review_store import GradeRecord
from retinaview.ui.report import (
    EyeReport,
    ReportError,
    ReportInfo,
    eye_from_explanation,
    eye_from_result,
    overlay_image,
    write_report,
)

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    return (resize(data.retina(), (240, 240), anti_aliasing=True) * 255).astype(np.uint8)


def _score(shape=(96, 96)) -> tuple[np.ndarray, np.ndarray]:
    """A map with one strong positive spot and one negative spot; a circular field of view."""
    yy, xx = np.mgrid[: shape[0], : shape[1]] / shape[0]
    score = 3 * np.exp(-((yy - 0.35) ** 2 + (xx - 0.6) ** 2) / 0.004)
    score -= 2 * np.exp(-((yy - 0.7) ** 2 + (xx - 0.3) ** 2) / 0.003)
    score += 0.05 * np.random.default_rng(0).standard_normal(shape)
    fov = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.2
    return score.astype(np.float32), fov


def _record(name: str, grade: int | None, **kw) -> GradeRecord:
    base = dict(
        file=name,
        digest="d",
        reviewer="Dr Ada",
        grade=grade,
        referable=grade is None or grade >= 2,
        confidence=4,
        note="IRMA near the upper arcade",
        updated="2026-12-03T09:12:00.000+00:00",
    )
    base.update(kw)
    return GradeRecord(**base)


INFO = ReportInfo(
    model="paper17",
    checksum="3f2a9c1b",
    method="rfscore",
    threshold=2.0,
    date=datetime(2026, 12, 3, 10, 0).astimezone(),
)


def _render(pdf: Path, out_prefix: Path) -> np.ndarray:
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(out_prefix)],
        check=True,
        timeout=60,
    )
    return np.asarray(Image.open(out_prefix.with_suffix(".png")).convert("RGB"))


def _text(pdf: Path) -> str:
    """The page's words, spaces collapsed and ligatures (fi) unfolded."""
    out = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"],
        check=True,
        capture_output=True,
        timeout=60,
        text=True,
    ).stdout
    return " ".join(unicodedata.normalize("NFKC", out).split())


needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) not installed",
)


def test_overlay_colours_only_beyond_the_threshold(photo):
    score, fov = _score()
    eye = EyeReport("x.png", photo, score=score, fov=fov, probs=[0.1, 0.1, 0.6, 0.1, 0.1])
    img = overlay_image(eye, INFO)
    assert img.shape == photo.shape
    changed = np.any(img != photo, axis=2)
    # Positive mode: the positive spot (upper right) is drawn, the negative spot (lower left) is not.
    assert changed[int(0.35 * 240), int(0.6 * 240)]
    assert not changed[int(0.7 * 240), int(0.3 * 240)]
    assert 0 < changed.mean() < 0.1


@needs_poppler
def test_image_report_renders_with_every_field(photo, tmp_path):
    score, fov = _score()
    eye = EyeReport(
        "13_left.jpeg",
        photo,
        score=score,
        fov=fov,
        probs=[0.05, 0.1, 0.71, 0.1, 0.04],
        record=_record("13_left.jpeg", 3),
        quality="gradable",
    )
    pdf = write_report(tmp_path / "r.pdf", [eye], INFO)
    page = _render(pdf, tmp_path / "page")
    assert page.shape[0] > page.shape[1]  # portrait A4
    assert page.std() > 20  # not blank
    r, g, b = (page[..., k].astype(int) for k in range(3))
    assert ((g > 150) & (r < 120) & (b < 140)).sum() > 30  # the map's green is on the page
    text = _text(pdf)
    for expected in (
        "13_left.jpeg",
        "Model grade: 2 · Moderate",
        "71.0 %",
        "Reviewer's grade: 3 · Severe",
        "Gradable: yes",
        "Referable DR: yes",
        "Confidence: 4 of 5",
        "Dr Ada",
        "Note: IRMA near the upper arcade",
        "Image quality: gradable",
        "paper17",
        "checksum 3f2a9c1b",
        "Method: rfscore",
        "threshold 2 σ",
        "2026-12-03",
    ):
        assert expected in text, expected


@needs_poppler
def test_patient_report_two_eyes_and_patient_grade(photo, tmp_path):
    score, fov = _score((240, 240))
    left = EyeReport("7_left.jpeg", photo, score=score, fov=fov, probs=[0.8, 0.1, 0.05, 0.03, 0.02],
                     record=_record("7_left.jpeg", 0), side="left")  # fmt: skip
    right = EyeReport(
        "7_right.jpeg",
        photo[:, ::-1],
        record=_record("7_right.jpeg", None, gradable=False, reason="out of focus"),
        side="right",
    )
    pdf = write_report(tmp_path / "p.pdf", [left, right], INFO, title="Patient 7",
                       patient_grade=(1, [0.2, 0.5, 0.2, 0.05, 0.05]))  # fmt: skip
    page = _render(pdf, tmp_path / "patient")
    assert page.std() > 20
    text = _text(pdf)
    for expected in (
        "Patient 7",
        "Patient grade (both-eyes model): 1 · Mild (50 %)",
        "Left eye · 7_left.jpeg",
        "Right eye · 7_right.jpeg",
        "Gradable: no (out of focus)",
        "No map",
        "Reviewer's grade: no grade",
    ):
        assert expected in text, expected


def test_bad_requests_are_one_line(photo, tmp_path):
    with pytest.raises(ReportError, match="no such folder"):
        write_report(tmp_path / "missing" / "r.pdf", [EyeReport("a.png", photo)], INFO)
    with pytest.raises(ReportError, match="nothing to report"):
        write_report(tmp_path / "r.pdf", [], INFO)


def test_eye_from_explanation_prints_the_predicted_class_map(photo):
    from retinaview.core.common.result import Explanation

    score, fov = _score((240, 240))
    total = np.stack([-score, 0 * score, score, 0 * score, 0 * score])
    logits = np.array([0.0, 0.5, 2.0, 0.1, -1.0])
    ex = Explanation(
        method="rfscore",
        logits=logits,
        probs=np.exp(logits) / np.exp(logits).sum(),
        bias=np.zeros(5),
        maps=total,
        fov=fov,
        map_kind="total",
        extra_maps={"input": total},
        display=photo,
    )
    eye = eye_from_explanation("9_left.jpeg", ex, side="left")
    assert eye.grade == 2 and eye.side == "left"
    assert np.array_equal(eye.score, score) and eye.photo is photo
    drawn = np.any(overlay_image(eye, INFO) != photo, axis=2)
    assert drawn[int(0.35 * 240), int(0.6 * 240)]
    with pytest.raises(ReportError, match="no photograph"):
        eye_from_explanation(
            "x.png", Explanation("rfscore", logits, logits, total, fov, map_kind="total")
        )


def test_place_map_follows_the_engine_affine():
    from retinaview.ui.map_render import place_map, place_mask

    # A map linear in the model's row and column indices: bilinear placement reproduces it exactly.
    u, v = np.mgrid[:10, :12].astype(np.float32)
    score = 3 * u - 2 * v + 1
    to_photo = (
        2.0,
        5.0,
        1.5,
        -3.0,
    )  # photo = a * model + b per axis; part of the photo off the map
    placed = place_map(score, to_photo, (40, 30), fill=np.nan)
    yy, xx = np.mgrid[:40, :30]
    mu, mv = (yy - 5.0) / 2.0, (xx + 3.0) / 1.5
    on_map = (mu >= 0) & (mu <= 9) & (mv >= 0) & (mv <= 11)
    assert np.allclose(placed[on_map], (3 * mu - 2 * mv + 1)[on_map], atol=1e-4)
    off = (mu < -0.5) | (mu > 9.5) | (mv < -0.5) | (mv > 11.5)
    assert off.any() and np.isnan(placed[off]).all()
    mask = place_mask(np.ones((10, 12), bool), to_photo, (40, 30))
    assert mask[on_map].all() and not mask[off].any()


def test_eye_from_result_places_the_map_on_the_full_photograph(photo):
    from types import SimpleNamespace

    from retinaview.core.common.result import Explanation

    small, fov = _score((60, 60))  # the model saw the photograph at a quarter of its size
    total = np.stack([0 * small, small, 0 * small, 0 * small, 0 * small])
    logits = np.array([0.0, 3.0, 0.5, 0.1, -1.0])
    ex = Explanation("rfscore", logits, np.exp(logits) / np.exp(logits).sum(), total, fov,
                     map_kind="total")  # fmt: skip
    result = SimpleNamespace(photo=photo, explanation=ex, to_photo=(4.0, 1.5, 4.0, 1.5))
    eye = eye_from_result("5_right.jpeg", result, side="right")
    assert eye.grade == 1 and eye.photo is photo
    drawn = np.any(overlay_image(eye, INFO) != photo, axis=2)
    assert drawn[int(0.35 * 240), int(0.6 * 240)] and not drawn[int(0.7 * 240), int(0.3 * 240)]
