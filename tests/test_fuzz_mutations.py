"""Random corruption (seeded, so every run tries the same files): bytes of valid images, labels files and
checkpoints overwritten, inserted or cut at random places. Whatever the damage, the reader either works or
raises the one error type of its kind with one line naming the file; no other exception escapes.

(Generated cases in the style of property-based testing, with numpy's generator: no extra dependency.)
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from retinaview.core.checkpoint import load_checkpoint
from retinaview.core.common.errors import CheckpointError, DataError, ImageError
from retinaview.core.common.io import load_image
from retinaview.core.common.labels import read_label_rows
from tests.fuzz_inputs import paper17_checkpoint, reference_image

MUTATIONS_PER_FORMAT = 150


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random edit: overwrite a few bytes, insert a run, delete a run, or cut the tail."""
    b = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(int(rng.integers(1, 8))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
    elif kind == 1:
        at = int(rng.integers(len(b)))
        b[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif kind == 2:
        at = int(rng.integers(len(b)))
        del b[at : at + int(rng.integers(1, 64))]
    else:
        del b[int(rng.integers(1, len(b))) :]
    return bytes(b)


def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(reference_image()).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "suffix", "kw"),
    [
        ("PNG", ".png", {}),
        ("JPEG", ".jpg", {"quality": 90}),
        ("TIFF", ".tif", {"compression": "tiff_lzw"}),
        ("BMP", ".bmp", {}),
    ],
)
def test_corrupted_images(fmt, suffix, kw, tmp_path):
    rng = np.random.default_rng(sum(map(ord, fmt)))
    clean = _encoded(fmt, **kw)
    outcomes = {"read": 0, "refused": 0}
    for k in range(MUTATIONS_PER_FORMAT):
        path = tmp_path / f"m{k}{suffix}"
        path.write_bytes(mutate(clean, rng))
        try:
            img = load_image(path, max_pixels=2_000_000)
        except ImageError as exc:
            msg = str(exc)
            assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
            assert exc.__cause__ is None
            outcomes["refused"] += 1
        else:
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
            outcomes["read"] += 1
    assert outcomes["refused"] > 0  # the edits do damage; the test is not vacuous


def test_corrupted_labels_files(tmp_path):
    rng = np.random.default_rng(7)
    clean = "image,level\n" + "".join(f"eye{k},{k % 5}\n" for k in range(20))
    refused = 0
    for k in range(200):
        path = tmp_path / f"labels{k}.csv"
        path.write_bytes(mutate(clean.encode(), rng))
        try:
            rows = read_label_rows(path)
        except DataError as exc:
            msg = str(exc)
            assert msg.startswith(str(path)) and "\n" not in msg, msg
            refused += 1
        else:
            assert all(0 <= r.grade <= 4 and r.image for r in rows)
    assert refused > 0


def test_corrupted_checkpoints(tmp_path):
    clean = paper17_checkpoint(tmp_path / "clean.pt").read_bytes()
    rng = np.random.default_rng(11)
    refused = 0
    for k in range(25):
        path = tmp_path / f"m{k}.pt"
        path.write_bytes(mutate(clean, rng))
        try:
            model, spec, _ = load_checkpoint(path)
        except CheckpointError as exc:
            msg = str(exc)
            assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
            refused += 1
        else:
            assert spec.arch == "paper17"
    assert refused > 0
