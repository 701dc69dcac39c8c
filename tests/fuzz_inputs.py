"""Hostile and unusual inputs of every kind a user can give retinaview, each with the promise it gets.

Every `Case` builds one input in a folder and says what must happen:

- ``same``: it works and gives exactly the answer of the clean copy (lossless re-encodings);
- ``ok``: it works (a grade and finite probabilities; lossy or mode-changing variants);
- ``reject``: one line on stderr (or one notice) that names the file and matches ``match``, exit code 2.

Kinds: ``image`` (formats, modes, sizes, corruptions, non-files), ``csv`` (labels files), ``checkpoint``
(one field wrong at a time, and files that are not checkpoints), ``run`` (``train --resume`` folders),
``head`` (both-eyes head files), ``out`` (output paths) and ``env`` (``RETINAVIEW_DEFAULT_MODEL``). The
test modules ``test_fuzz_*.py`` run them through the CLI sub-commands and the GUI's open paths.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# The clean photograph: a small fundus-like disc on black in 6 levels per channel (216 colours at most),
# so a palette PNG and a GIF hold it exactly.
REF_SHAPE = (60, 72)


def reference_image() -> np.ndarray:
    """A deterministic (60, 72, 3) uint8 'fundus': orange disc, darker vessels, a bright optic disc."""
    h, w = REF_SHAPE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(yy - h / 2, xx - w / 2)
    img = np.zeros((h, w, 3), np.float64)
    inside = r < 0.45 * min(h, w) * 1.2
    img[inside] = (0.8, 0.4, 0.15)
    img[inside] *= 1.0 - 0.5 * r[inside, None] / r.max()
    vessels = inside & (np.abs(np.sin(xx / 5.0) * 8 - (yy - h / 2)) < 1.2)
    img[vessels] = (0.5, 0.15, 0.05)
    disc = np.hypot(yy - h / 2, xx - 0.7 * w) < 5
    img[disc & inside] = (1.0, 0.85, 0.6)
    levels = np.round(img * 5) / 5  # 6 levels per channel
    return (levels * 255).round().astype(np.uint8)


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    expect: str  # "same", "ok" or "reject"
    make: Callable[[Path], Path]
    match: str = ""
    listed: bool = True  # an image a folder listing shows (suffix and regular file)

    def __repr__(self) -> str:  # pytest ids
        return f"{self.kind}:{self.name}"


# ------------------------------------------------------------------------------------- model files

TINY_INPUT = 64


def tiny_checkpoint(path: Path) -> Path:
    """A ResNet-18 grader at 64 px input (a fast explanation), random weights, seed 0."""
    return _checkpoint(path, "resnet18", {"input_size": TINY_INPUT})


def paper17_checkpoint(path: Path) -> Path:
    """The paper's grader with random weights (seed 0): a small file whose fields the cases edit."""
    return _checkpoint(path, "paper17", {})


def _checkpoint(path: Path, arch: str, config: dict) -> Path:
    import torch

    from retinaview.core.checkpoint import save_checkpoint
    from retinaview.core.models.registry import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, spec = build_model(arch, config)
    return save_checkpoint(path, model, spec)


# ------------------------------------------------------------------------------------------ images


def _save(name: str, **kw) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        Image.fromarray(reference_image()).save(p, **kw)
        return p

    return make


def _pil(name: str, convert: Callable[[Image.Image], Image.Image], **kw) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        convert(Image.fromarray(reference_image())).save(p, **kw)
        return p

    return make


def _bytes(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        p.write_bytes(data() if callable(data) else data)
        return p

    return make


def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(reference_image()).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _bad_crc_png() -> bytes:
    data = bytearray(_encoded("PNG"))
    data[29] ^= 0xFF  # inside the IHDR CRC
    return bytes(data)


def _broken_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block has a tag pointing past its end (Pillow warns "Possibly corrupt EXIF")."""
    entries = struct.pack("<HHIHH", 0x0112, 3, 1, 1, 0)  # orientation 1 (as stored)
    entries += struct.pack("<HHII", 0x010F, 2, 100, 4000)  # camera make: 100 bytes past the end
    ifd = struct.pack("<H", 2) + entries + struct.pack("<I", 0)
    exif = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    data = _encoded("JPEG", quality=95)
    segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    return data[:2] + segment + data[2:]


def _rotated_jpeg(folder: Path) -> Path:
    p = folder / "exif_rotated.jpg"
    img = Image.fromarray(reference_image())
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(p, exif=exif, quality=95)
    return p


def _gray16(folder: Path) -> Path:
    p = folder / "gray16.png"
    g = reference_image().mean(2).astype(np.uint16) * 257
    Image.fromarray(g).save(p)  # mode I;16
    return p


def _fifo(folder: Path) -> Path:
    p = folder / "pipe.png"
    os.mkfifo(p)
    return p


def _folder_named(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        p.mkdir()
        return p

    return make


def _symlink(name: str, target: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        p.symlink_to(target)
        return p

    return make


def _alpha_const(img: Image.Image) -> Image.Image:
    out = img.convert("RGBA")
    out.putalpha(255)
    return out


def _alpha_ramp(img: Image.Image) -> Image.Image:
    out = img.convert("RGBA")
    a = np.tile(np.linspace(0, 255, img.width).astype(np.uint8), (img.height, 1))
    out.putalpha(Image.fromarray(a))
    return out


def _palette(img: Image.Image) -> Image.Image:
    return img.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)


def _truncate(fmt: str, keep: float, **kw) -> Callable[[], bytes]:
    def data() -> bytes:
        b = _encoded(fmt, **kw)
        return b[: int(len(b) * keep)]

    return data


IMAGE_CASES: tuple[Case, ...] = (
    Case("image", "clean.png", "same", _save("clean.png")),
    Case("image", "bmp", "same", _save("as.bmp")),
    Case("image", "tiff_raw", "same", _save("raw.tif")),
    Case("image", "tiff_lzw", "same", _save("lzw.tiff", compression="tiff_lzw")),
    Case("image", "tiff_deflate", "same", _save("deflate.tif", compression="tiff_adobe_deflate")),
    Case("image", "png_as_jpg", "same", _bytes("png_named.jpg", lambda: _encoded("PNG"))),
    Case("image", "upper_suffix", "same", _save("UPPER.PNG")),
    Case("image", "png_compress9", "same", _save("c9.png", compress_level=9)),
    Case("image", "png_interlaced", "same", _bytes("adam7.png", lambda: _adam7())),
    Case("image", "rgba_opaque", "same", _pil("opaque.png", _alpha_const)),
    Case("image", "palette", "same", _pil("palette.png", _palette)),
    Case("image", "space name", "same", _save("a name with spaces é.png")),
    Case("image", "jpeg95", "ok", _save("q95.jpg", quality=95)),
    Case("image", "jpeg_q5", "ok", _save("q5.jpg", quality=5)),
    Case("image", "jpeg_progressive", "ok", _save("prog.jpeg", quality=90, progressive=True)),
    Case("image", "jpeg_cmyk", "ok", _pil("cmyk.jpg", lambda i: i.convert("CMYK"))),
    Case("image", "jpeg_gray", "ok", _pil("gray.jpg", lambda i: i.convert("L"))),
    Case("image", "exif_rotated", "ok", _rotated_jpeg),
    Case("image", "exif_broken", "ok", _bytes("broken_exif.jpg", _broken_exif_jpeg)),
    Case("image", "gray_png", "ok", _pil("gray.png", lambda i: i.convert("L"))),
    Case("image", "bilevel_png", "ok", _pil("bilevel.png", lambda i: i.convert("1"))),
    Case("image", "gray16_png", "ok", _gray16),
    Case("image", "la_png", "ok", _pil("la.png", lambda i: i.convert("LA"))),
    Case("image", "alpha_ramp", "ok", _pil("alpha_ramp.png", _alpha_ramp)),
    Case("image", "one_pixel", "ok", _bytes("one.png", lambda: _tiny(1, 1))),
    Case("image", "one_row", "ok", _bytes("row.png", lambda: _tiny(300, 1))),
    Case("image", "empty", "reject", _bytes("empty.png", b""), r"empty file"),
    Case("image", "png_truncated", "reject", _bytes("cut.png", _truncate("PNG", 0.5)), "truncated"),
    Case(
        "image",
        "jpeg_truncated",
        "reject",
        _bytes("cut.jpg", _truncate("JPEG", 0.5, quality=95)),
        "truncated",
    ),
    Case("image", "png_bad_crc", "reject", _bytes("crc.png", _bad_crc_png), "corrupt PNG image"),
    Case(
        "image",
        "random_bytes",
        "reject",
        _bytes("noise.png", bytes(range(256)) * 4),
        "not an image",
    ),
    Case(
        "image",
        "text_as_jpg",
        "reject",
        _bytes("notes.jpg", b"patient notes\n" * 20),
        "not an image",
    ),
    Case(
        "image",
        "checkpoint_as_png",
        "reject",
        _bytes("model.png", b"PK\x03\x04" + bytes(60)),
        "not an image",
    ),
    Case(
        "image",
        "huge_header",
        "reject",
        _bytes("huge.png", lambda: _png_header(100_000, 100_000)),
        "too large",
    ),
    Case(
        "image",
        "gif",
        "reject",
        _bytes("anim.gif", lambda: _encoded("GIF")),
        "unsupported image format GIF",
        listed=False,
    ),
    Case(
        "image",
        "gif_named_png",
        "reject",
        _bytes("gif_named.png", lambda: _encoded("GIF")),
        "unsupported image format GIF",
    ),
    Case(
        "image",
        "webp",
        "reject",
        _bytes("photo.webp", lambda: _encoded("WEBP", lossless=True)),
        "unsupported image format WEBP",
        listed=False,
    ),
    Case(
        "image",
        "ppm_named_bmp",
        "reject",
        _bytes("ppm.bmp", lambda: _encoded("PPM")),
        "unsupported image format PPM",
    ),
    Case(
        "image", "folder", "reject", _folder_named("folder.png"), "not a regular file", listed=False
    ),
    Case(
        "image",
        "named_pipe",
        "reject",
        _fifo,
        "not a regular file \\(a named pipe\\)",
        listed=False,
    ),
    Case(
        "image",
        "device",
        "reject",
        lambda folder: Path(os.devnull),
        r"not a regular file \(a device\)",
        listed=False,
    ),
    Case(
        "image",
        "broken_symlink",
        "reject",
        _symlink("dangling.png", "nowhere.png"),
        "no such file",
        listed=False,
    ),
    Case(
        "image",
        "missing",
        "reject",
        lambda folder: folder / "missing.png",
        "no such file",
        listed=False,
    ),
)


def _adam7() -> bytes:
    buf = io.BytesIO()
    # Pillow writes no interlaced PNG; an interlaced one needs its own encoder: filter 0, Adam7 passes.
    img = reference_image()
    h, w = img.shape[:2]
    passes = (
        (0, 0, 8, 8),
        (0, 4, 8, 8),
        (4, 0, 8, 4),
        (0, 2, 4, 4),
        (2, 0, 4, 2),
        (0, 1, 2, 2),
        (1, 0, 2, 1),
    )
    raw = bytearray()
    for y0, x0, dy, dx in passes:
        sub = img[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    buf.write(b"\x89PNG\r\n\x1a\n")
    buf.write(_png_chunk(b"IHDR", ihdr))
    buf.write(_png_chunk(b"IDAT", zlib.compress(bytes(raw))))
    buf.write(_png_chunk(b"IEND", b""))
    return buf.getvalue()


def _tiny(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 90, 30)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------ labels CSVs


def _csv(text: str | bytes, name: str = "labels.csv") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8", newline="")
        return p

    return make


# Images eye0..eye3 (all the clean photograph) are in the folder; each case writes labels for them.
CSV_CASES: tuple[Case, ...] = (
    Case("csv", "eyepacs", "ok", _csv("image,level\neye0,0\neye1,2\neye2,4\neye3,1\n")),
    Case("csv", "aptos", "ok", _csv("id_code,diagnosis\neye0,0\neye1,2\neye2,4\neye3,1\n")),
    Case(
        "csv",
        "crlf_bom",
        "ok",
        _csv("\ufeffimage,level\r\neye0,0\r\neye1,2\r\neye2,4\r\neye3,1\r\n"),
    ),
    Case("csv", "with_suffix", "ok", _csv("image,level\neye0.png,0\neye1.png,2\n")),
    Case("csv", "empty", "reject", _csv(""), "empty file"),
    Case("csv", "header_only", "reject", _csv("image,level\n"), "no rows after the header"),
    Case("csv", "wrong_columns", "reject", _csv("file,grade\neye0,0\n"), "expected columns"),
    Case(
        "csv", "grade_text", "reject", _csv("image,level\neye0,severe\n"), "line 2: label 'severe'"
    ),
    Case("csv", "grade_7", "reject", _csv("image,level\neye0,7\n"), "line 2: label '7'"),
    Case("csv", "grade_float", "reject", _csv("image,level\neye0,2.0\n"), "line 2: label '2.0'"),
    Case("csv", "duplicate", "reject", _csv("image,level\neye0,1\neye0,2\n"), "listed twice"),
    Case("csv", "missing_image", "reject", _csv("image,level\neye9,1\n"), "'eye9' not found"),
    Case("csv", "three_fields", "reject", _csv("image,level\neye0,1,2\n"), "expected 2 fields"),
    Case("csv", "binary", "reject", _csv(bytes(range(256))), "not a text CSV file"),
    Case(
        "csv", "utf16", "reject", _csv("image,level\neye0,1\n".encode("utf-16")), "not a text CSV"
    ),
    Case(
        "csv", "folder", "reject", _folder_named("labels.csv"), r"not a regular file \(a folder\)"
    ),
    Case(
        "csv",
        "named_pipe",
        "reject",
        lambda f: (os.mkfifo(f / "labels.csv"), f / "labels.csv")[1],
        r"not a regular file",
    ),
    Case("csv", "missing", "reject", lambda f: f / "labels.csv", r"no such file"),
    Case("csv", "device", "reject", lambda f: Path(os.devnull), r"not a regular file"),
)


# ------------------------------------------------------------------------------------ checkpoints


def mutate(field: str, value: Any) -> Callable[[dict], None]:
    """A payload edit: set ``field`` (dotted for config and state_dict keys) to ``value``; a value of
    `DELETE` removes it."""

    def edit(payload: dict) -> None:
        target = payload
        parts = field.split(".", 1) if field.startswith("config.") else [field]
        if field.startswith("state_dict:"):
            key = field.split(":", 1)[1]
            target, parts = payload["state_dict"], [key]
        elif len(parts) == 2:
            target, parts = payload["config"], [parts[1]]
        if value is DELETE:
            del target[parts[0]]
        elif callable(value):
            target[parts[0]] = value(target[parts[0]])
        else:
            target[parts[0]] = value

    return edit


DELETE = object()


def _zeros(n: int):
    import torch

    return torch.zeros(n)


def _nan(t):
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


def _inf(t):
    t = t.clone()
    t.view(-1)[-1] = float("inf")
    return t


# (name, edit of a valid payload, the field the message names and what it says)
CHECKPOINT_EDITS: tuple[tuple[str, Callable[[dict], None], str], ...] = (
    (
        "version_str",
        mutate("version", "1"),
        r"field 'version': expected a positive integer, found str",
    ),
    ("version_float", mutate("version", 1.0), r"field 'version': expected a positive integer"),
    ("version_none", mutate("version", DELETE), r"field 'version'"),
    ("version_newer", mutate("version", 99), r"written by a newer retinaview \(format 99"),
    ("arch_none", mutate("arch", None), r"field 'arch': expected an architecture name"),
    ("arch_unknown", mutate("arch", "vgg99"), r"unknown architecture 'vgg99'"),
    ("config_list", mutate("config", [1, 2]), r"field 'config': expected a mapping"),
    ("config_int_key", mutate("config", {1: 2}), r"field 'config': expected setting names"),
    ("num_classes_text", mutate("config.num_classes", "five"), r"field 'config.num_classes'"),
    (
        "num_classes_zero",
        mutate("config.num_classes", 0),
        r"field 'config.num_classes': expected an integer 1\.\.1000",
    ),
    ("num_classes_bool", mutate("config.num_classes", True), r"field 'config.num_classes'"),
    ("input_size_text", mutate("input_size", "big"), r"field 'input_size': expected an integer"),
    (
        "input_size_tiny",
        mutate("input_size", 4),
        r"field 'input_size': expected an integer 16\.\.4096",
    ),
    ("input_size_huge", mutate("input_size", 10**6), r"field 'input_size'"),
    ("input_size_unfit", mutate("input_size", 320), r"field 'input_size': 320 does not fit"),
    (
        "preprocessing_unknown",
        mutate("preprocessing", "sepia"),
        r"field 'preprocessing': expected one of paper",
    ),
    ("preprocessing_int", mutate("preprocessing", 3), r"field 'preprocessing'"),
    ("mean_short", mutate("mean", [0.5, 0.5]), r"field 'mean': expected a list of 3 numbers"),
    ("mean_text", mutate("mean", ["a", "b", "c"]), r"field 'mean'"),
    ("mean_nan", mutate("mean", [float("nan"), 0.2, 0.1]), r"field 'mean'"),
    (
        "std_zero",
        mutate("std", [0.3, 0.0, 0.1]),
        r"field 'std': expected a list of 3 positive numbers",
    ),
    ("std_scalar", mutate("std", 0.2), r"field 'std'"),
    ("class_names_str", mutate("class_names", "No DR"), r"field 'class_names': expected a list"),
    (
        "class_names_three",
        mutate("class_names", ["a", "b", "c"]),
        r"field 'class_names': expected 5 names",
    ),
    ("class_names_blank", mutate("class_names", ["", "b", "c", "d", "e"]), r"field 'class_names'"),
    (
        "class_names_vs_outputs",
        lambda p: (
            p["config"].__setitem__("num_classes", 3),
            p.__setitem__("class_names", ["a", "b", "c"]),
        ),
        r"classifier\.weight.*expected shape \(3, 64\), found \(5, 64\)",
    ),
    ("state_dict_list", mutate("state_dict", [1, 2]), r"field 'state_dict': expected a mapping"),
    (
        "state_dict_value_list",
        mutate("state_dict:classifier.bias", [0.0] * 5),
        r"field 'state_dict\['classifier\.bias'\]': expected a tensor",
    ),
    (
        "state_dict_missing",
        mutate("state_dict:classifier.bias", DELETE),
        r"missing classifier\.bias",
    ),
    (
        "state_dict_extra",
        lambda p: p["state_dict"].__setitem__("extra.weight", _zeros(2)),
        r"unexpected extra\.weight",
    ),
    (
        "state_dict_int_key",
        lambda p: p["state_dict"].__setitem__(7, _zeros(2)),
        r"field 'state_dict': expected parameter names that are strings",
    ),
    (
        "state_dict_int_weights",
        mutate("state_dict:classifier.weight", lambda t: t.long()),
        r"classifier\.weight.*expected a torch\.float32 tensor",
    ),
    (
        "state_dict_shape",
        mutate("state_dict:classifier.bias", lambda t: t[:3].clone()),
        r"expected shape \(5,\), found \(3,\)",
    ),
    (
        "weights_nan",
        mutate("state_dict:body.layer1.0.weight", _nan),
        r"field 'state_dict\['body\.layer1\.0\.weight'\]': expected finite numbers, found NaN",
    ),
    ("weights_inf", mutate("state_dict:classifier.weight", _inf), r"expected finite numbers"),
    ("bn_var_nan", mutate("state_dict:body.layer3.1.running_var", _nan), r"running_var"),
    ("task_unknown", mutate("task", "segmentation-of-cats"), r"field 'task': expected 'grading'"),
    ("metrics_list", mutate("metrics", [0.5]), r"field 'metrics': expected a mapping"),
    (
        "no_header",
        mutate("format", DELETE),
        r"not a retinaview checkpoint \(no 'retinaview-checkpoint' header\)",
    ),
)


def _write_torch(obj: Any, name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import torch

        p = folder / name
        torch.save(obj, p)
        return p

    return make


class Exploit:
    """A pickle that would create a marker folder if it ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _exploit(name: str, raw: bool) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import torch

        p = folder / name
        marker = str(folder / "pwned")
        if raw:
            p.write_bytes(pickle.dumps(Exploit(marker)))
        else:
            torch.save({"format": "retinaview-checkpoint", "x": Exploit(marker)}, p)
        return p

    return make


def _truncated_checkpoint(valid: Path) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / "truncated.pt"
        p.write_bytes(valid.read_bytes()[: valid.stat().st_size // 2])
        return p

    return make


def checkpoint_file_cases(valid: Path) -> tuple[Case, ...]:
    """Files that are not checkpoints at all, given where a model file is expected."""
    return (
        Case(
            "checkpoint",
            "jpeg",
            "reject",
            _bytes("photo.pt", lambda: _encoded("JPEG")),
            r"not a retinaview checkpoint \(it looks like a JPEG image\)",
        ),
        Case(
            "checkpoint",
            "png",
            "reject",
            _bytes("image.pth", lambda: _encoded("PNG")),
            r"\(it looks like a PNG image\)",
        ),
        Case(
            "checkpoint",
            "text",
            "reject",
            _bytes("readme.pt", b"model weights, version 2\n"),
            r"\(it looks like text\)",
        ),
        Case(
            "checkpoint",
            "utf8_text",
            "reject",
            _bytes("notes.pt", "modèle pour l'œil\n".encode()),
            r"\(it looks like text\)",
        ),
        Case(
            "checkpoint",
            "gzip",
            "reject",
            _bytes("model.pt.gz", b"\x1f\x8b\x08" + bytes(20)),
            r"\(it looks like a gzip archive\)",
        ),
        Case("checkpoint", "empty", "reject", _bytes("empty.pt", b""), r"empty file"),
        Case(
            "checkpoint",
            "folder",
            "reject",
            _folder_named("folder.pt"),
            r"not a regular file \(a folder\)",
        ),
        Case(
            "checkpoint",
            "named_pipe",
            "reject",
            lambda f: (os.mkfifo(f / "pipe.pt"), f / "pipe.pt")[1],
            r"not a regular file \(a named pipe\)",
        ),
        Case("checkpoint", "missing", "reject", lambda f: f / "missing.pt", r"no such file"),
        Case(
            "checkpoint",
            "device",
            "reject",
            lambda f: Path(os.devnull),
            r"not a regular file \(a device\)",
        ),
        Case(
            "checkpoint",
            "truncated",
            "reject",
            _truncated_checkpoint(valid),
            r"truncated or corrupt",
        ),
        Case(
            "checkpoint",
            "zip_garbage",
            "reject",
            _bytes("garbage.pt", b"PK\x03\x04" + bytes(100)),
            r"truncated or corrupt|not a retinaview checkpoint",
        ),
        Case(
            "checkpoint",
            "exploit_in_torch",
            "reject",
            _exploit("evil.pt", raw=False),
            r"refused: the file holds Python objects that could run code",
        ),
        Case(
            "checkpoint",
            "exploit_raw_pickle",
            "reject",
            _exploit("raw.pt", raw=True),
            r"refused|not a retinaview checkpoint",
        ),
        Case(
            "checkpoint",
            "plain_state_dict",
            "reject",
            _write_torch({"w": np.zeros(2).tolist()}, "plain.pt"),
            r"not a retinaview checkpoint \(no 'retinaview-checkpoint' header\)",
        ),
        Case(
            "checkpoint",
            "list_payload",
            "reject",
            _write_torch([1, 2, 3], "list.pt"),
            r"no 'retinaview-checkpoint' header",
        ),
    )


# ------------------------------------------------------------------------------------ output paths


def out_cases() -> tuple[Case, ...]:
    """``--out`` values that cannot be written; each command refuses them before any work."""

    def existing_file(folder: Path) -> Path:
        p = folder / "taken"
        p.write_text("a file\n")
        return p

    def under_file(folder: Path) -> Path:
        (folder / "plain.txt").write_text("a file\n")
        return folder / "plain.txt" / "run"

    def deep_under_file(folder: Path) -> Path:
        (folder / "plain2.txt").write_text("a file\n")
        return folder / "plain2.txt" / "a" / "b"

    def long_name(folder: Path) -> Path:
        return folder / ("x" * 300)

    return (
        Case("out", "existing_file", "reject", existing_file, r"exists and is not a folder"),
        Case("out", "under_file", "reject", under_file, r"plain\.txt is a file, not a folder"),
        Case(
            "out",
            "deep_under_file",
            "reject",
            deep_under_file,
            r"plain2\.txt is a file, not a folder",
        ),
        Case("out", "long_name", "reject", long_name, r"longer than 255 bytes"),
    )


# ------------------------------------------------------------------------- train --resume run folders

# (name, edit of a valid last.pt payload, what the message says)
RUN_EDITS: tuple[tuple[str, Callable[[dict], None], str], ...] = (
    ("no_train_state", mutate("train_state", DELETE), r"no training state to resume from"),
    ("train_state_list", mutate("train_state", [1]), r"no training state to resume from"),
    (
        "no_optimizer",
        lambda p: p["train_state"].pop("optimizer"),
        r"field 'train_state\.optimizer': expected an optimizer state \(state and param_groups\), found nothing",
    ),
    (
        "optimizer_text",
        lambda p: p["train_state"].__setitem__("optimizer", "adam"),
        r"field 'train_state\.optimizer'",
    ),
    (
        "epoch_text",
        lambda p: p["train_state"].__setitem__("epoch", "3"),
        r"field 'train_state\.epoch': expected an integer >= 0, found str '3'",
    ),
    (
        "epoch_negative",
        lambda p: p["train_state"].__setitem__("epoch", -1),
        r"field 'train_state\.epoch'",
    ),
    (
        "no_step",
        lambda p: p["train_state"].pop("global_step"),
        r"field 'train_state\.global_step'.*found nothing",
    ),
    (
        "rng_list",
        lambda p: p["train_state"].__setitem__("torch_rng", [1, 2]),
        r"field 'train_state\.torch_rng'",
    ),
    (
        "history_text",
        lambda p: p["train_state"].__setitem__("history", "none"),
        r"field 'train_state\.history'",
    ),
    (
        "best_qwk_text",
        lambda p: p["train_state"].__setitem__("best_qwk", "0.8"),
        r"field 'train_state\.best_qwk'",
    ),
    (
        "confusion_shape",
        lambda p: p["train_state"]["epoch_stats"].__setitem__("confusion", [[0, 1]]),
        r"field 'train_state\.epoch_stats\.confusion': expected 5 rows of 5 integers",
    ),
    (
        "optimizer_other_model",
        lambda p: p["train_state"]["optimizer"]["param_groups"][0].__setitem__("params", [0, 1]),
        r"training state does not fit this run",
    ),
    ("arch_other", mutate("arch", "resnet18"), r"holds a resnet18 run, not paper17"),
    ("weights_nan", mutate("state_dict:classifier.weight", _nan), r"expected finite numbers"),
)


# ------------------------------------------------------------------------------ both-eyes head files

# (name, edit of a valid head payload, what the message says)
HEAD_EDITS: tuple[tuple[str, Callable[[dict], None], str], ...] = (
    (
        "no_weight",
        mutate("weight", DELETE),
        r"field 'weight': expected a 2-d floating-point tensor, found nothing",
    ),
    (
        "weight_list",
        mutate("weight", [[0.0]]),
        r"field 'weight': expected a 2-d floating-point tensor, found list",
    ),
    ("weight_1d", mutate("weight", lambda t: t.reshape(-1)), r"field 'weight': expected a 2-d"),
    ("bias_short", mutate("bias", lambda t: t[:2].clone()), r"field 'bias': expected 5 values"),
    ("std_zero", mutate("std", lambda t: t * 0), r"field 'std': expected positive numbers"),
    ("mean_nan", mutate("mean", _nan), r"field 'mean': expected finite numbers"),
    (
        "mean_int",
        mutate("mean", lambda t: t.long()),
        r"field 'mean': expected a 1-d floating-point tensor",
    ),
    (
        "three_classes",
        lambda p: (
            p.__setitem__("weight", p["weight"][:3].clone()),
            p.__setitem__("bias", p["bias"][:3].clone()),
        ),
        r"field 'weight': expected 5 classes like the model, found 3",
    ),
    (
        "half_features",
        lambda p: (
            p.__setitem__("weight", p["weight"][:, :64].clone()),
            p.__setitem__("mean", p["mean"][:64].clone()),
            p.__setitem__("std", p["std"][:64].clone()),
        ),
        r"expected 128 inputs \(two eyes of 64 features\), found 64",
    ),
    (
        "no_header",
        mutate("format", DELETE),
        r"not a both-eyes head file \(no 'retinaview-patient-head' header\)",
    ),
)


def paper17_run(folder: Path) -> Path:
    """A run folder whose last.pt could be resumed: paper17 weights and a complete training state."""
    import torch

    from retinaview.core.checkpoint import save_checkpoint
    from retinaview.core.models.registry import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, spec = build_model("paper17")
        state = {
            "epoch": 0,
            "step_in_epoch": 1,
            "global_step": 1,
            "best_qwk": None,
            "best_epoch": None,
            "optimizer": torch.optim.Adam(model.parameters(), lr=3e-4).state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch_stats": {
                "confusion": [[0] * 5 for _ in range(5)],
                "loss_sum": 0.0,
                "steps": 1,
                "images": 2,
                "seconds": 0.5,
                "data_wait": 0.0,
                "loader_start": 0.0,
            },
            "history": [],
            "config": {},
        }
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "last.pt", model, spec, train_state=state)
    return folder


def patient_head(path: Path) -> Path:
    """A valid both-eyes head for a 64-feature, 5-class model."""
    from retinaview.train.patient import PatientHead, save_head

    rng = np.random.default_rng(0)
    head = PatientHead(
        rng.normal(size=(5, 128)), rng.normal(size=5), rng.normal(size=128), rng.random(128) + 0.5
    )
    return save_head(path, head, {"model": "test"})


def edited_copy(source: Path, target: Path, edit: Callable[[dict], Any]) -> Path:
    """``source``'s payload with ``edit`` applied, saved to ``target``."""
    import torch

    payload = torch.load(source, weights_only=True)
    edit(payload)
    torch.save(payload, target)
    return target
