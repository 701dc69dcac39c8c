"""Write a synthetic data set: images, an EyePACS ``labels.csv`` and compressed ground truth per image.

Layout of ``out_dir``::

    labels.csv                   image,level   (image name without extension)
    <name>.png | <name>.jpg      the photographs
    groundtruth/<name>.npz       grade, bit-packed masks (lesions, vessels, arteries, FOV), centres, eye, seed

Names are ``synth_<seed>_<index:05d>``; with ``patients`` they are ``p<seed>_<index:05d>_left`` and
``..._right`` pairs with correlated grades.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from retinaview.core.synthetic.generator import SynthSample, generate
from retinaview.core.synthetic.grading import (
    DEFAULT_CLASS_FREQUENCIES,
    check_frequencies,
    draw_patient_grades,
)
from retinaview.core.synthetic.lesions import LESION_TYPES

GROUNDTRUTH_DIR = "groundtruth"


def image_seed(seed: int, index: int) -> int:
    """The generator seed of image ``index`` of a data set with ``seed`` (well mixed, 63 bits)."""
    a, b = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return (int(a) << 31) ^ int(b)


def save_groundtruth(path: Path, s: SynthSample) -> None:
    shape = np.array(s.fov.shape, np.int32)

    def pack(m):
        return np.packbits(np.asarray(m, bool).ravel())

    arrays = {
        "grade": np.int8(s.grade),
        "eye": np.array(s.eye),
        "seed": np.array(str(s.seed)),
        "shape": shape,
        "disc_center": np.array(s.disc_center, np.float32),
        "fovea_center": np.array(s.fovea_center, np.float32),
        "fov_center": np.array(s.fov_center, np.float32),
        "disc_radius": np.float32(s.disc_radius),
        "vessels": pack(s.vessels),
        "fov": pack(s.fov),
    }
    if s.arteries is not None:
        arrays["arteries"] = pack(s.arteries)
    for k in LESION_TYPES:
        arrays[f"lesion_{k}"] = pack(s.lesions[k])
    np.savez_compressed(path, **arrays)


def _image_path(gt_path: Path) -> Path | None:
    folder = gt_path.parent.parent if gt_path.parent.name == GROUNDTRUTH_DIR else gt_path.parent
    for ext in (".png", ".jpg", ".jpeg"):
        p = folder / (gt_path.stem + ext)
        if p.exists():
            return p
    return None


def load_groundtruth(path, load_image: bool = True) -> SynthSample:
    """Read a ground-truth ``.npz`` back into a SynthSample (image read from beside ``groundtruth/``).

    When the image is missing (or ``load_image`` is False) ``image`` is a black array of the right shape.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        shape = tuple(int(v) for v in z["shape"])
        n = shape[0] * shape[1]

        def unpack(key):
            return np.unpackbits(z[key], count=n).astype(bool).reshape(shape)

        lesions = {k: unpack(f"lesion_{k}") for k in LESION_TYPES}
        image = None
        ip = _image_path(path) if load_image else None
        if ip is not None:
            with Image.open(ip) as im:
                image = np.asarray(im.convert("RGB"))
        if image is None:
            image = np.zeros((*shape, 3), np.uint8)
        return SynthSample(
            image=image,
            grade=int(z["grade"]),
            lesions=lesions,
            vessels=unpack("vessels"),
            fov=unpack("fov"),
            disc_center=tuple(float(v) for v in z["disc_center"]),
            fovea_center=tuple(float(v) for v in z["fovea_center"]),
            eye=str(z["eye"]),
            seed=int(str(z["seed"])),
            arteries=unpack("arteries") if "arteries" in z else None,
            fov_center=tuple(float(v) for v in z["fov_center"]),
            disc_radius=float(z["disc_radius"]),
        )


def write_dataset(
    out_dir,
    n: int,
    seed: int,
    size: int = 640,
    patients: bool = False,
    frequencies: Sequence[float] = DEFAULT_CLASS_FREQUENCIES,
    fmt: str = "png",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``n`` synthetic photographs (with ``patients``: ceil(n/2) left/right pairs) into ``out_dir``.

    Returns the path of ``labels.csv``. ``progress(done, total)`` is called after each image.
    Raises ValueError for bad arguments.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, not {seed}")
    fmt = fmt.lower().lstrip(".")
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in ("png", "jpg"):
        raise ValueError(f"format must be png or jpg, not {fmt}")
    freqs = check_frequencies(frequencies)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gt_dir = out / GROUNDTRUTH_DIR
    gt_dir.mkdir(exist_ok=True)

    jobs: list[tuple[str, int, int | None, str | None]] = []  # name, image seed, grade, eye
    if patients:
        rng = np.random.default_rng([int(seed), 0x5EED])
        for p in range((n + 1) // 2):
            left, right = draw_patient_grades(rng, freqs)
            pid = f"p{seed}_{p:05d}"
            jobs.append((f"{pid}_left", image_seed(seed, 2 * p), left, "left"))
            jobs.append((f"{pid}_right", image_seed(seed, 2 * p + 1), right, "right"))
    else:
        for i in range(n):
            jobs.append((f"synth_{seed}_{i:05d}", image_seed(seed, i), None, None))

    rows = []
    total = len(jobs)
    for done, (name, s, grade, eye) in enumerate(jobs, start=1):
        sample = generate(s, grade=grade, size=size, frequencies=freqs, eye=eye)
        im = Image.fromarray(sample.image)
        if fmt == "png":
            im.save(out / f"{name}.png", compress_level=4)
        else:
            im.save(out / f"{name}.jpg", quality=95, subsampling=0)
        save_groundtruth(gt_dir / f"{name}.npz", sample)
        rows.append((name, sample.grade))
        if progress is not None:
            progress(done, total)
    labels = out / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "level"])
        w.writerows(rows)
    return labels
