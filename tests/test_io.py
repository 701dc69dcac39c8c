"""Reading images: every kind a user can give, and every way it can be broken."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retinaview.core.common.errors import ImageError, RetinaviewError
from retinaview.core.common.io import (
    IMAGE_SUFFIXES,
    coerce_image,
    file_digest,
    list_images,
    load_image,
)


def _check_rgb(a: np.ndarray, shape: tuple[int, int]) -> None:
    assert a.shape == (*shape, 3)
    assert a.dtype == np.uint8
    assert a.flags.c_contiguous
    assert a.flags.writeable


def _error(path, **kw) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert info.value.__cause__ is None  # no chained Pillow/OS traceback
    assert info.value.__context__ is None or info.value.__suppress_context__
    return msg


# ----------------------------------------------------------------------------------- good images


def test_rgb_png_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    p = tmp_path / "rgb.png"
    Image.fromarray(a).save(p)
    out = load_image(p)
    _check_rgb(out, (17, 23))
    np.testing.assert_array_equal(out, a)


def test_exif_rotated_jpeg(tmp_path):
    # Stored 40 wide x 20 high: left half red, right half blue. Orientation 6 = rotate 90 deg clockwise
    # for display, so the image becomes 20 wide x 40 high with red on top.
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:] = (0, 0, 255)
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6
    p = tmp_path / "rotated.jpg"
    img.save(p, exif=exif, quality=95)
    out = load_image(p)
    _check_rgb(out, (40, 20))
    top, bottom = out[:15].reshape(-1, 3).mean(0), out[25:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_16bit_png_scaled_by_bit_range(tmp_path):
    vals = np.array([[0, 257, 1000], [32768, 60000, 65535]], dtype=np.uint16)
    img = Image.fromarray(vals)
    assert img.mode == "I;16"
    p = tmp_path / "deep.png"
    img.save(p)
    out = load_image(p)
    _check_rgb(out, (2, 3))
    expected = np.rint(vals / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_16bit_image_mode_i(tmp_path):
    vals = np.array([[0, 30000, 65535]], dtype=np.int32)
    img = Image.fromarray(vals, mode="I")
    p = tmp_path / "deep_i.tif"
    img.save(p)
    out = load_image(p)
    np.testing.assert_array_equal(out[0, :, 1], [0, 117, 255])


def test_grayscale_and_bilevel(tmp_path):
    g = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    p = tmp_path / "gray.png"
    Image.fromarray(g).save(p)
    out = load_image(p)
    _check_rgb(out, (4, 6))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)
    p1 = tmp_path / "bw.bmp"
    Image.fromarray(g > 100).convert("1").save(p1)
    out1 = load_image(p1)
    assert set(np.unique(out1)) <= {0, 255}
    np.testing.assert_array_equal(out1[..., 0] == 255, g > 100)


def test_palette_with_and_without_transparency(tmp_path):
    a = np.zeros((8, 8, 3), np.uint8)
    a[:4] = (200, 50, 10)
    a[4:] = (10, 220, 30)
    pal = Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    p = tmp_path / "pal.png"
    pal.save(p)
    out = load_image(p)
    _check_rgb(out, (8, 8))
    np.testing.assert_allclose(out[0, 0], (200, 50, 10), atol=2)
    # Palette index of the green rows made transparent -> composited over black.
    green_index = pal.getpixel((0, 7))
    pt = tmp_path / "pal_t.png"
    pal.save(pt, transparency=green_index)
    out_t = load_image(pt)
    np.testing.assert_array_equal(out_t[7, 0], (0, 0, 0))
    np.testing.assert_allclose(out_t[0, 0], (200, 50, 10), atol=2)


def test_rgba_composited_over_black(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., :3] = (200, 100, 50)
    a[0, :, 3] = 255
    a[1, :, 3] = 128
    a[2:, :, 3] = 0
    p = tmp_path / "alpha.png"
    Image.fromarray(a, "RGBA").save(p)
    out = load_image(p)
    _check_rgb(out, (4, 4))
    np.testing.assert_array_equal(out[0, 0], (200, 100, 50))
    np.testing.assert_allclose(out[1, 0], (100, 50, 25), atol=1)
    np.testing.assert_array_equal(out[3, 3], (0, 0, 0))
    # LA too
    la = Image.fromarray(a[..., [0, 3]], "LA")
    pla = tmp_path / "la.png"
    la.save(pla)
    out_la = load_image(pla)
    np.testing.assert_allclose(out_la[1, 0], (100, 100, 100), atol=1)


def test_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (16, 12), (0, 255, 255, 0))  # pure red in CMYK
    p = tmp_path / "cmyk.jpg"
    img.save(p, quality=95)
    out = load_image(p)
    _check_rgb(out, (12, 16))
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_ycbcr_and_tiff(tmp_path):
    a = np.full((6, 5, 3), (30, 160, 90), np.uint8)
    img = Image.fromarray(a).convert("YCbCr")
    p = tmp_path / "ycc.tiff"
    img.save(p)
    out = load_image(p)
    _check_rgb(out, (6, 5))
    np.testing.assert_allclose(out[0, 0], (30, 160, 90), atol=3)


# ------------------------------------------------------------------------------------ bad images


def test_missing_file(tmp_path):
    msg = _error(tmp_path / "missing.png")
    assert "no such file" in msg


def test_folder_is_not_an_image(tmp_path):
    d = tmp_path / "dir.png"
    d.mkdir()
    assert "folder" in _error(d)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    assert "empty file" in _error(p)


def test_text_file_named_png(tmp_path):
    p = tmp_path / "scan.png"
    p.write_text("this is not an image\n" * 10)
    assert "not an image file" in _error(p)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file(tmp_path, suffix):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(a).save(full)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error(cut)


def _png_with_size(path: Path, width: int, height: int) -> None:
    """A small valid PNG whose IHDR claims another size (CRC fixed): what a decompression bomb looks like."""
    Image.new("RGB", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


def test_huge_header_rejected_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    _png_with_size(p, 30000, 30000)
    msg = _error(p)
    assert "image too large" in msg and "limit 100 megapixels" in msg


def test_huge_header_own_limit(tmp_path):
    # 96 MP: above Pillow's warning threshold, below its error; our own limit decides.
    p = tmp_path / "big.png"
    _png_with_size(p, 12000, 8000)
    msg = _error(p, max_pixels=50_000_000)
    assert msg == f"{p}: image too large (12000x8000 pixels, limit 50 megapixels)"


def test_max_pixels_on_real_image(tmp_path):
    p = tmp_path / "black.png"
    Image.new("RGB", (200, 100)).save(p)
    assert load_image(p).shape == (100, 200, 3)
    msg = _error(p, max_pixels=10_000)
    assert "image too large (200x100 pixels" in msg


def test_image_error_is_a_retinaview_error():
    assert issubclass(ImageError, RetinaviewError)


# --------------------------------------------------------------------------------- coerce_image


def test_coerce_arrays():
    rgb = np.zeros((5, 6, 3), np.uint8)
    rgb[..., 1] = 77
    out = coerce_image(rgb)
    _check_rgb(out, (5, 6))
    np.testing.assert_array_equal(out, rgb)

    gray = np.full((5, 6), 9, np.uint8)
    np.testing.assert_array_equal(coerce_image(gray)[..., 2], gray)
    np.testing.assert_array_equal(coerce_image(gray[..., None])[..., 0], gray)

    f = np.full((3, 4, 3), 0.5, np.float32)
    assert coerce_image(f)[0, 0, 0] == 128

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[0, :, 3] = 255
    out = coerce_image(rgba)
    assert out[0, 0, 0] == 200 and out[1, 0, 0] == 0

    u16 = np.full((2, 2, 3), 65535, np.uint16)
    assert coerce_image(u16)[0, 0, 0] == 255
    assert coerce_image(np.ones((2, 2), bool))[0, 0, 0] == 255
    assert coerce_image(np.full((2, 2), 7, np.int64))[0, 0, 0] == 7


def test_coerce_pil_and_path(tmp_path):
    img = Image.new("L", (4, 3), 50)
    _check_rgb(coerce_image(img), (3, 4))
    p = tmp_path / "a.png"
    Image.new("RGB", (4, 3), (1, 2, 3)).save(p)
    np.testing.assert_array_equal(coerce_image(p)[0, 0], (1, 2, 3))
    np.testing.assert_array_equal(coerce_image(str(p))[0, 0], (1, 2, 3))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4,), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.full((4, 4, 3), 2.0, np.float32),
        np.full((4, 4, 3), np.nan, np.float32),
        np.full((4, 4, 3), 300, np.int32),
        np.zeros((4, 4, 3), np.complex64),
    ],
)
def test_coerce_bad_arrays(bad):
    with pytest.raises(ImageError) as info:
        coerce_image(bad)
    msg = str(info.value)
    assert msg.startswith("<array>: ") and "\n" not in msg


def test_coerce_bad_type():
    with pytest.raises(ImageError, match="<array>"):
        coerce_image(12345)


# -------------------------------------------------------------------------- folders and digests


def test_list_images_natural_order(tmp_path):
    for name in ["img10.png", "img2.png", "IMG1.JPG", "b.TIFF", "c.bmp", "d.jpeg", "e.tif"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "labels.csv").write_text("x")
    (tmp_path / "sub.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["b.TIFF", "c.bmp", "d.jpeg", "e.tif", "IMG1.JPG", "img2.png", "img10.png"]
    assert all(isinstance(p, Path) for p in list_images(str(tmp_path)))
    assert set(IMAGE_SUFFIXES) == {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}


def test_list_images_bad_folder(tmp_path):
    with pytest.raises(ImageError, match="no such folder"):
        list_images(tmp_path / "nope")
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    with pytest.raises(ImageError, match="not a folder"):
        list_images(f)


def test_file_digest(tmp_path):
    a, b, c = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "c.bin"
    a.write_bytes(b"fundus" * 1000)
    b.write_bytes(b"fundus" * 1000)
    c.write_bytes(b"fundus" * 999)
    da = file_digest(a)
    assert len(da) == 32 and int(da, 16) >= 0
    assert da == file_digest(b) != file_digest(c)
    with pytest.raises(ImageError, match="no such file"):
        file_digest(tmp_path / "missing.bin")
