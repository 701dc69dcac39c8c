"""The images ``retinaview compare`` explains, with their grade and lesion masks when known.

- ``synth:N:SEED``: item i is ``generate(SEED * 1_000_003 + i)`` (the grade drawn inside, as for
  ``retinaview evaluate``), with its lesion masks per type.
- ``DIR``: the image files directly inside DIR, sorted by name; grades from a labels CSV when DIR has one (or
  ``labels`` names it). Lesion masks from a folder ``masks``: one subfolder per lesion type (or files directly
  inside it, type ``lesion``), each mask named like its image (``IMG.png`` or ``IMG_anything.png``, IDRiD's
  ``IDRiD_01_MA.tif`` for ``IDRiD_01.jpg``), any value above 0 is lesion.

Problems with one image or one mask are one line each (`Source.notes` and the `RetinaviewError` of
`Item.load`), so the other images go on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retinaview.core.common.errors import DataError, RetinaviewError
from retinaview.core.common.io import IMAGE_SUFFIXES, load_image

SEED_STRIDE = 1_000_003
FLAT_MASK_TYPE = "lesion"


@dataclass
class Loaded:
    """One loaded image: RGB uint8 ``image``, ``grade`` (None when unknown), ``masks`` by lesion type (None
    when there is no ground truth) and one line per mask that could not be used (``notes``)."""

    image: np.ndarray
    grade: int | None
    masks: dict[str, np.ndarray] | None
    notes: list[str] = field(default_factory=list)


@dataclass
class Item:
    """One image: ``key`` (file-safe, unique), ``name`` (what messages call it) and ``load()`` -> `Loaded`,
    which raises `RetinaviewError` when the image itself cannot be read."""

    key: str
    name: str
    load: Callable[[], Loaded]


@dataclass
class Source:
    """The items of a data set and one line per problem found while listing them."""

    items: list[Item]
    notes: list[str] = field(default_factory=list)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def synthetic_source(n: int, seed: int, size: int) -> Source:
    """``n`` synthetic photographs of ``size`` pixels from ``seed``."""

    def loader(i: int):
        def load():
            from retinaview.core.synthetic import generate

            s = generate(seed * SEED_STRIDE + i, size=size)
            return Loaded(s.image, s.grade, dict(s.lesions))

        return load

    return Source([Item(f"synth-{seed}-{i:05d}", f"synth:{seed}:{i}", loader(i)) for i in range(n)])


def _mask_files(masks: Path) -> list[tuple[str, Path]]:
    """(lesion type, file) for every image file in ``masks`` and its subfolders."""
    out = []
    for p in sorted(masks.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            out += [
                (p.name, f)
                for f in sorted(p.iterdir())
                if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
            ]
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            out.append((FLAT_MASK_TYPE, p))
    return out


def _match(stem: str, stems: list[str]) -> str | None:
    """The image stem a mask stem belongs to: equal, or the longest image stem followed by ``_``."""
    if stem in stems:
        return stem
    best = None
    for s in stems:
        if stem.startswith(s + "_") and (best is None or len(s) > len(best)):
            best = s
    return best


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask of ``shape`` (H, W) from an image file; `DataError` naming the file otherwise."""
    arr = load_image(path)
    if arr.shape[:2] != tuple(shape):
        raise DataError(
            f"{path}: mask is {arr.shape[1]}x{arr.shape[0]} but its image is {shape[1]}x{shape[0]}"
        )
    return arr.max(axis=2) > 0


def folder_source(
    folder: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
) -> Source:
    """The images directly inside ``folder``, with grades from a labels CSV and masks from ``masks``.

    Raises
    ------
    DataError
        When ``folder`` or ``masks`` is not a folder, the labels CSV is broken, or there is no image.
    """
    from retinaview.train.data import load_folder

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (and not a synth:N:SEED source)")
    images = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
    if not images:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    grades: dict[str, int] = {}
    csvs = sorted(folder.glob("*.csv"))
    if labels or csvs:
        grades = {r.path.name: r.grade for r in load_folder(folder, labels)}
    notes: list[str] = []
    by_image: dict[str, list[tuple[str, Path]]] = {p.stem: [] for p in images}
    if masks is not None:
        masks = Path(masks)
        if not masks.is_dir():
            raise DataError(f"{masks}: no such mask folder")
        stems = list(by_image)
        for kind, f in _mask_files(masks):
            owner = _match(f.stem, stems)
            if owner is None:
                notes.append(
                    f"{f}: no image named {f.stem} (or a prefix of it) in {folder}; mask ignored"
                )
            else:
                by_image[owner].append((kind, f))
        if not any(by_image.values()):
            notes.append(f"{masks}: no mask matches an image of {folder}")

    def loader(path: Path):
        def load():
            image = load_image(path)
            found: dict[str, np.ndarray] = {}
            problems = []
            for kind, f in by_image[path.stem]:
                try:
                    m = read_mask(f, image.shape[:2])
                except RetinaviewError as exc:
                    problems.append(f"{exc}; mask ignored")
                    continue
                found[kind] = found[kind] | m if kind in found else m
            return Loaded(
                image, grades.get(path.name), found if masks is not None else None, problems
            )

        return load

    items = [Item(_safe(p.stem), str(p), loader(p)) for p in images]
    return Source(items, notes)


def parse_data(
    text: str,
    size: int,
    labels: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
) -> Source:
    """``synth:N:SEED`` (synthetic photographs of ``size`` px) or a folder; one-line `DataError` otherwise."""
    from retinaview.train.data import SynthSource, parse_source

    src = parse_source(text)
    if isinstance(src, SynthSource):
        if masks is not None:
            raise DataError(
                "--masks is for an image folder; synthetic images bring their own masks"
            )
        return synthetic_source(src.n, src.seed, size)
    return folder_source(src.folder, labels, masks)
