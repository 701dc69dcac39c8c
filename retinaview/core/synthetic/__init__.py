"""Synthetic diabetic-retinopathy fundus photographs with pixel-exact ground truth.

``generate(seed, grade)`` draws one photograph: a field of view with black surround, orange-red fundus with
uneven illumination and choroidal texture, optic disc and cup, darker macula and fovea, a branching tree of
arteries and veins, and the lesions of its grade (see ``grading``), then a camera model. ``write_dataset``
writes a folder of them with an EyePACS label CSV and the ground truth beside each image.
"""

from __future__ import annotations

from retinaview.core.synthetic.generator import SynthSample, generate
from retinaview.core.synthetic.grading import (
    DEFAULT_CLASS_FREQUENCIES,
    GRADE_NAMES,
    draw_grade,
    draw_patient_grades,
    patient_joint,
)
from retinaview.core.synthetic.lesions import LESION_TYPES
from retinaview.core.synthetic.writer import load_groundtruth, write_dataset

__all__ = [
    "DEFAULT_CLASS_FREQUENCIES",
    "GRADE_NAMES",
    "LESION_TYPES",
    "SynthSample",
    "draw_grade",
    "draw_patient_grades",
    "generate",
    "load_groundtruth",
    "patient_joint",
    "write_dataset",
]
