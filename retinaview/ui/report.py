"""A printable report of one image or one patient (both eyes), written with Qt's own PDF writer.

Each eye shows the photograph, the map of the predicted class at the chosen n-sigma threshold drawn over it
(`retinaview.core.common.render.overlay`, the same colours as the CLI's PNGs) with its colour bar, the model's
grade and class probabilities, the quality gate's verdict, and the reviewer's grade, gradability and note; the
page ends with the model's name and checksum, the explanation method, the threshold and the date.

Inputs are numpy arrays and plain records (no torch): the window passes what it already shows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from retinaview.core.common.colormaps import lut
from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.result import Explanation
from retinaview.core.common.review_store import GradeRecord
from retinaview.ui.map_render import map_over_photo, qimage

__all__ = [
    "EyeReport",
    "ReportError",
    "ReportInfo",
    "eye_from_explanation",
    "eye_from_result",
    "write_report",
]

GRADE_NAMES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")
# Printed on white paper: darker versions of the screen's grade colours.
_GRADE_INK = ("#2e8b47", "#8a8f12", "#c26a00", "#c0392b", "#9b2f93")
_SATURATION_SIGMA = 4.0  # `render.overlay` saturates its colours at 4 sigma
_DPI = 150


class ReportError(RetinaviewError):
    """The report cannot be written: one line naming the file and the problem."""


@dataclass
class EyeReport:
    """What the report shows of one photograph.

    ``photo``: (H, W, 3) uint8. ``score``: (h, w) float map of the predicted class (resized to the photograph
    when its shape differs; it must cover the same field), or None. ``fov``: (h, w) bool field of view of the
    map (for sigma), or None. ``probs``: the model's class probabilities, or None. ``record``: the reviewer's
    record, or None. ``quality``: the quality gate's label (``gradable`` / ``ungradable: <reason>``) or None.
    """

    name: str
    photo: np.ndarray
    score: np.ndarray | None = None
    fov: np.ndarray | None = None
    probs: Sequence[float] | None = None
    record: GradeRecord | None = None
    quality: str | None = None
    side: str = ""  # "left" / "right" in a patient report
    to_photo: tuple[float, float, float, float] | None = None  # engine's model -> photo affine

    @property
    def grade(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))


@dataclass
class ReportInfo:
    """How the maps were made, printed at the foot of every page."""

    model: str = "unknown model"
    checksum: str = ""
    method: str = "rfscore"
    threshold: float = 2.0
    mode: str = "positive"
    cmap: str = "green-red"
    date: datetime = field(default_factory=lambda: datetime.now().astimezone())


def eye_from_explanation(
    name: str,
    explanation: Explanation,
    record: GradeRecord | None = None,
    quality: str | None = None,
    side: str = "",
    kind: str = "total",
) -> EyeReport:
    """An `EyeReport` from the engine's explanation of an image: the model's view of the photograph
    (``display``, at model input size, so the map lies exactly on it), the ``kind`` map (``total`` or
    ``input``; the method's own map when it has no such kind) of the predicted class, the field of view
    and the probabilities."""
    maps = explanation.kind(kind) if kind in explanation.kinds else explanation.maps
    grade = int(np.argmax(explanation.logits))
    if explanation.display is None:
        raise ReportError(f"{name}: the explanation holds no photograph to print")
    return EyeReport(
        name=name,
        photo=explanation.display,
        score=np.asarray(maps[grade]),
        fov=explanation.fov,
        probs=[float(p) for p in explanation.probs],
        record=record,
        quality=quality,
        side=side,
    )


def eye_from_result(
    name: str,
    result,
    record: GradeRecord | None = None,
    quality: str | None = None,
    side: str = "",
    kind: str = "total",
) -> EyeReport:
    """An `EyeReport` from the engine's `ExplainResult` (`retinaview.engine.requests`): its photograph,
    the ``kind`` map of the predicted class placed on it by the result's ``to_photo`` affine, the field of
    view and the probabilities."""
    ex = result.explanation
    # The asked kind when the method has it, else the method's own map (most methods have one kind).
    maps = ex.kind(kind) if kind in ex.kinds else ex.maps
    grade = int(np.argmax(ex.logits))
    return EyeReport(
        name=name,
        photo=result.photo,
        score=np.asarray(maps[grade]),
        fov=ex.fov,
        probs=[float(p) for p in ex.probs],
        record=record,
        quality=quality,
        side=side,
        to_photo=tuple(result.to_photo),
    )


def overlay_image(eye: EyeReport, info: ReportInfo) -> np.ndarray:
    """(H, W, 3) uint8: the photograph with the map beyond the threshold coloured (the photograph alone
    when there is no map)."""
    return map_over_photo(
        eye.photo, eye.score, eye.fov, n=info.threshold, mode=info.mode, cmap=info.cmap
    )


class _Page:
    """Page geometry in device pixels and the painter's helpers."""

    def __init__(self, painter: QPainter, rect: QRectF) -> None:
        self.p = painter
        self.rect = rect
        self.mm = _DPI / 25.4

    def font(self, pt: float, bold: bool = False) -> None:
        f = QFont("DejaVu Sans")
        f.setPointSizeF(pt)
        f.setBold(bold)
        self.p.setFont(f)

    def text(
        self, x: float, y: float, w: float, text: str, pt: float = 9, bold=False, colour="#202020"
    ) -> float:
        """Draw wrapped text in a box of width ``w`` from (x, y); returns the height used."""
        self.font(pt, bold)
        self.p.setPen(QColor(colour))
        box = self.p.boundingRect(QRectF(x, y, w, 10_000), int(Qt.TextFlag.TextWordWrap), text)
        self.p.drawText(QRectF(x, y, w, box.height()), int(Qt.TextFlag.TextWordWrap), text)
        return box.height()


def _colour_bar(page: _Page, x: float, y: float, w: float, info: ReportInfo) -> float:
    """The overlay's colour scale from -4 to +4 sigma, the part inside the threshold shown as not drawn."""
    p, mm = page.p, page.mm
    bar_h = 4 * mm
    table = lut(info.cmap)
    n = info.threshold
    for k in range(256):
        s = (k - 128) / 127 * _SATURATION_SIGMA  # score in sigma at this entry
        kept = {"positive": s > n, "negative": s < -n, "absolute": abs(s) > n}[info.mode]
        r, g, b = (int(v) for v in table[k, :3])
        colour = QColor(r, g, b) if kept else QColor("#e4e4e4")
        p.fillRect(QRectF(x + w * k / 256, y, w / 256 + 0.6, bar_h), colour)
    p.setPen(QPen(QColor("#808080"), 1))
    p.drawRect(QRectF(x, y, w, bar_h))
    ticks = sorted({-_SATURATION_SIGMA, -n, 0.0, n, _SATURATION_SIGMA})
    page.font(7)
    p.setPen(QColor("#303030"))
    for t in ticks:
        tx = x + w * (t + _SATURATION_SIGMA) / (2 * _SATURATION_SIGMA)
        p.drawLine(int(tx), int(y + bar_h), int(tx), int(y + bar_h + 1.2 * mm))
        label = "0" if t == 0 else f"{t:+.1f} σ"
        # The end labels stay inside the bar's width (a neighbouring column may start beside it).
        if t == -_SATURATION_SIGMA:
            box, align = QRectF(tx, 0, 24 * mm, 0), Qt.AlignmentFlag.AlignLeft
        elif t == _SATURATION_SIGMA:
            box, align = QRectF(tx - 24 * mm, 0, 24 * mm, 0), Qt.AlignmentFlag.AlignRight
        else:
            box, align = QRectF(tx - 12 * mm, 0, 24 * mm, 0), Qt.AlignmentFlag.AlignHCenter
        box.moveTop(y + bar_h + 1.2 * mm)
        box.setHeight(4 * mm)
        p.drawText(box, int(align), label)
    caption = (
        f"score of the predicted class in standard deviations over the field of view; "
        f"grey: inside ±{n:g} σ ({info.mode}), not drawn; green for the class, red against"
    )
    used = bar_h + 5.5 * mm
    used += page.text(x, y + used, w, caption, pt=6.5, colour="#606060")
    return used


def _probabilities(page: _Page, x: float, y: float, w: float, probs: Sequence[float]) -> float:
    p, mm = page.p, page.mm
    row = 4.2 * mm
    grade = int(np.argmax(probs))
    label_w = 30 * mm
    for k, pr in enumerate(probs):
        ry = y + k * row
        name = GRADE_NAMES[k] if k < len(GRADE_NAMES) else str(k)
        page.text(x, ry, label_w, f"{k} {name}", pt=7.5, bold=k == grade)
        bar_w = (w - label_w - 14 * mm) * float(pr)
        ink = _GRADE_INK[k % len(_GRADE_INK)] if k == grade else "#a0a0a0"
        p.fillRect(QRectF(x + label_w, ry + 0.6 * mm, max(bar_w, 0.5), row - 1.6 * mm), QColor(ink))
        page.text(x + w - 13 * mm, ry, 13 * mm, f"{100 * pr:5.1f} %", pt=7.5)
    return len(probs) * row


def _eye(page: _Page, x: float, y: float, w: float, eye: EyeReport, info: ReportInfo) -> float:
    """Draw one eye's column; returns the height used."""
    mm = page.mm
    top = y
    title = f"{eye.side.capitalize()} eye · {eye.name}" if eye.side else eye.name
    y += page.text(x, y, w, title, pt=10, bold=True) + 1.5 * mm
    img = qimage(overlay_image(eye, info))
    scale = min(w / img.width(), (95 * mm) / img.height())
    iw, ih = img.width() * scale, img.height() * scale
    page.p.drawImage(QRectF(x + (w - iw) / 2, y, iw, ih), img)
    y += ih + 2 * mm
    if eye.score is not None:
        y += _colour_bar(page, x, y, w, info) + 2 * mm
    else:
        y += page.text(x, y, w, "No map (the model's output was not computed).", pt=8) + 2 * mm
    g = eye.grade
    if g is not None:
        name = GRADE_NAMES[g] if g < len(GRADE_NAMES) else str(g)
        y += page.text(x, y, w, f"Model grade: {g} · {name}", pt=11, bold=True,
                       colour=_GRADE_INK[g % len(_GRADE_INK)])  # fmt: skip
        y += 1 * mm
        y += _probabilities(page, x, y, w, eye.probs) + 2 * mm
    if eye.quality:
        y += page.text(x, y, w, f"Image quality: {eye.quality}", pt=9) + 1 * mm
    r = eye.record
    if r is None:
        y += page.text(x, y, w, "Reviewer: not graded", pt=9, bold=True) + 1 * mm
    else:
        graded = f"{r.grade} · {GRADE_NAMES[r.grade]}" if r.grade is not None else "no grade"
        lines = [
            f"Reviewer's grade: {graded}",
            "Gradable: yes" if r.gradable else f"Gradable: no ({r.reason})",
            f"Referable DR: {'yes' if r.referable else 'no'}",
        ]
        if r.confidence is not None:
            lines.append(f"Confidence: {r.confidence} of 5")
        y += page.text(x, y, w, lines[0], pt=10, bold=True) + 0.5 * mm
        y += page.text(x, y, w, "   ".join(lines[1:]), pt=8.5) + 0.5 * mm
        who = f"{r.reviewer}, {r.updated[:16].replace('T', ' ')} UTC" if r.updated else r.reviewer
        y += page.text(x, y, w, f"by {who}", pt=7.5, colour="#606060") + 0.5 * mm
        if r.note:
            y += page.text(x, y, w, f"Note: {r.note}", pt=8.5) + 1 * mm
    return y - top


def write_report(
    path: str | os.PathLike[str],
    eyes: Sequence[EyeReport],
    info: ReportInfo,
    title: str | None = None,
    patient_grade: tuple[int, Sequence[float] | None] | None = None,
) -> Path:
    """Write a one-page A4 PDF: one eye, or a patient's two eyes side by side.

    ``patient_grade``: the both-eyes head's grade of the patient and its probabilities, printed in the
    header when a head is loaded. Returns the path written; `ReportError` (one line) when it cannot be.
    """
    out = Path(path)
    if not eyes:
        raise ReportError(f"{out}: nothing to report (no image)")
    if len(eyes) > 2:
        raise ReportError(f"{out}: a report holds one image or one patient's two eyes")
    if not out.parent.is_dir():
        raise ReportError(f"{out.parent}: no such folder")
    writer = QPdfWriter(str(out))
    writer.setResolution(_DPI)
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter)
    writer.setTitle(title or eyes[0].name)
    writer.setCreator("retinaview")
    painter = QPainter()
    if not painter.begin(writer):
        raise ReportError(f"{out}: cannot write the PDF file")
    try:
        area = writer.pageLayout().paintRectPixels(_DPI)
        page = _Page(painter, QRectF(0, 0, area.width(), area.height()))
        mm = page.mm
        w = page.rect.width()
        y = 0.0
        heading = title or ("Patient report" if len(eyes) == 2 else "Image report")
        y += page.text(0, y, w, heading, pt=15, bold=True)
        y += page.text(0, y, w, "retinaview · diabetic retinopathy, ICDR grades 0-4", pt=8,
                       colour="#606060")  # fmt: skip
        if patient_grade is not None:
            pg_grade, pg_probs = patient_grade
            extra = "" if pg_probs is None else f" ({100 * float(pg_probs[pg_grade]):.0f} %)"
            y += 1 * mm + page.text(0, y + 1 * mm, w,
                                    f"Patient grade (both-eyes model): {pg_grade} · "
                                    f"{GRADE_NAMES[pg_grade]}{extra}", pt=11, bold=True,
                                    colour=_GRADE_INK[pg_grade % len(_GRADE_INK)])  # fmt: skip
        y += 3 * mm
        painter.setPen(QPen(QColor("#c0c0c0"), 1))
        painter.drawLine(0, int(y), int(w), int(y))
        y += 3 * mm
        gap = 8 * mm
        col_w = (w - gap * (len(eyes) - 1)) / len(eyes)
        for k, eye in enumerate(eyes):
            _eye(page, k * (col_w + gap), y, col_w, eye, info)
        foot_h = 16 * mm
        fy = page.rect.height() - foot_h
        painter.setPen(QPen(QColor("#c0c0c0"), 1))
        painter.drawLine(0, int(fy), int(w), int(fy))
        checksum = info.checksum or "not recorded"
        foot = (
            f"Model: {info.model} · checksum {checksum}\n"
            f"Method: {info.method} · map of the predicted class, threshold {info.threshold:g} σ "
            f"({info.mode}) · colours {info.cmap}\n"
            f"Report made {info.date.strftime('%Y-%m-%d %H:%M %Z').strip()} · for review by a "
            "qualified grader; the model's output is an aid, not a diagnosis."
        )
        page.text(0, fy + 1.5 * mm, w, foot, pt=7, colour="#404040")
    finally:
        painter.end()
    if not out.is_file() or out.stat().st_size == 0:
        raise ReportError(f"{out}: the PDF could not be written")
    return out
