"""``generate(seed, grade)``: one synthetic fundus photograph with its ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retinaview.core.synthetic import fundus, grading, lesions, vessels
from retinaview.core.synthetic.grading import DEFAULT_CLASS_FREQUENCIES
from retinaview.core.synthetic.lesions import LESION_TYPES


@dataclass
class SynthSample:
    """A synthetic photograph and everything known about it (coordinates in pixels, x right, y down)."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    grade: int  # 0..4
    lesions: dict[str, np.ndarray]  # LESION_TYPES -> (size, size) bool
    vessels: np.ndarray  # (size, size) bool
    fov: np.ndarray  # (size, size) bool
    disc_center: tuple[float, float]  # (x, y)
    fovea_center: tuple[float, float]
    eye: str  # "left" | "right"
    seed: int
    arteries: np.ndarray | None = None  # (size, size) bool, the arterial part of ``vessels``
    fov_center: tuple[float, float] = (0.0, 0.0)  # quadrants are counted around this point
    disc_radius: float = 0.0
    findings: dict = field(
        default_factory=dict
    )  # what was drawn (counts, sites) for reports and tests

    def lesion_union(self) -> np.ndarray:
        """Pixels covered by any lesion."""
        out = np.zeros(self.fov.shape, bool)
        for m in self.lesions.values():
            out |= m
        return out

    @property
    def size(self) -> int:
        return int(self.image.shape[0])


def generate(
    seed: int,
    grade: int | None = None,
    size: int = 640,
    frequencies: Sequence[float] = DEFAULT_CLASS_FREQUENCIES,
    eye: str | None = None,
) -> SynthSample:
    """Draw one synthetic fundus photograph; deterministic for (seed, grade, size, eye).

    ``grade`` None draws it from ``frequencies``; ``eye`` None draws left or right.
    """
    if grade is not None and int(grade) not in range(5):
        raise ValueError(f"grade must be 0..4, not {grade}")
    if eye not in (None, "left", "right"):
        raise ValueError(f"eye must be 'left' or 'right', not {eye!r}")
    size = int(size)
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, not {size}")
    rng = np.random.default_rng(seed)
    drawn = grading.draw_grade(
        rng, frequencies
    )  # always drawn, so the picture depends on (seed, grade)
    g = drawn if grade is None else int(grade)
    side = rng.random()
    eye = eye or ("left" if side < 0.5 else "right")

    lay = fundus.make_layout(rng, size)
    fov_a = fundus.fov_alpha(lay)
    img = fundus.background(rng, lay, fov_a)
    fundus.draw_disc(rng, img, lay)
    tree = vessels.grow_tree(rng, lay)
    plan = grading.plan_lesions(rng, g)
    beaded = lesions.venous_beading(rng, lay, tree, plan.venous_beading)
    art_op, vein_op, art_mask, vein_mask, bead_mask = vessels.render_vessels(
        (size, size), tree, lay.sc
    )
    _apply_vessels(rng, img, art_op, vein_op)

    cv = lesions.Canvas(img, fov_a, lay)
    found = lesions.draw_lesions(rng, cv, plan, tree)
    if g == 4 and not found["new_vessels"] and not found["preretinal_haemorrhage"]:
        site = lesions.new_vessels(rng, cv, tree, at_disc=True)
        found["new_vessels"] = [site] if site else []
    fov = fov_a > 0.5
    cv.masks["venous_beading"] = bead_mask & fov
    image = fundus.camera(rng, img, fov_a, lay.sc)

    masks = {k: cv.masks[k] & fov for k in LESION_TYPES}
    vessel_mask = (art_mask | vein_mask) & fov
    arteries = art_mask & fov
    disc = lay.disc
    fovea = lay.fovea
    cx = lay.cx
    if eye == "right":  # canonical pictures are left eyes (disc on the left): mirror
        image = image[:, ::-1].copy()
        masks = {k: m[:, ::-1].copy() for k, m in masks.items()}
        vessel_mask = vessel_mask[:, ::-1].copy()
        arteries = arteries[:, ::-1].copy()
        fov = fov[:, ::-1].copy()
        disc = (size - 1 - disc[0], disc[1])
        fovea = (size - 1 - fovea[0], fovea[1])
        cx = size - 1 - cx
    quads = grading.quadrants_with(masks["haemorrhages"], cx, lay.cy)
    found.update(
        grade_plan=plan,
        venous_beading=beaded,
        haemorrhage_quadrants=len(quads),
    )
    return SynthSample(
        image=image,
        grade=g,
        lesions=masks,
        vessels=vessel_mask,
        fov=fov,
        disc_center=(float(disc[0]), float(disc[1])),
        fovea_center=(float(fovea[0]), float(fovea[1])),
        eye=eye,
        seed=int(seed),
        arteries=arteries,
        fov_center=(float(cx), float(lay.cy)),
        disc_radius=float(lay.disc_r),
        findings=found,
    )


def _apply_vessels(rng, img: np.ndarray, art_op: np.ndarray, vein_op: np.ndarray) -> None:
    """Darken the picture along the vessels: veins darker and more purple, arteries lighter red."""
    contrast = np.float32(rng.uniform(0.85, 1.05))
    art = np.array([0.12, 0.45, 0.2], np.float32) * contrast
    vein = np.array([0.28, 0.6, 0.36], np.float32) * contrast
    flat = img.reshape(-1, 3)
    a = art_op.ravel()
    v = vein_op.ravel()
    idx = np.flatnonzero((a > 0) | (v > 0))
    f = (1.0 - a[idx, None] * art) * (1.0 - v[idx, None] * vein)
    flat[idx] *= f
