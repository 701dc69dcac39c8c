"""Reading images safely: any photograph a user can point at becomes an (H, W, 3) uint8 RGB array.

Every failure is an `ImageError` whose message is one line naming the file and the problem; no raw Pillow
or OS error escapes. numpy + Pillow only (no torch, no Qt).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from retinaview.core.common.errors import ImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "SUPPORTED_FORMATS",
    "coerce_image",
    "file_digest",
    "list_images",
    "load_image",
    "pil_to_rgb",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
# The Pillow formats behind IMAGE_SUFFIXES (MPO: the multi-picture JPEG some cameras write). A file is
# judged by its content, not its name, and exactly these formats are read: what a folder lists is what
# opens, and a GIF, WebP or icon file is refused rather than read by chance.
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "TIFF", "BMP"})
FORMAT_NAMES = ("JPEG", "PNG", "TIFF", "BMP")

# Pillow's own warnings (broken EXIF or TIFF metadata in a file it still decodes) are not the user's
# concern and would add lines to stderr; process-wide, because the app's thumbnail threads decode with
# Pillow too and `warnings.catch_warnings` is not thread-safe.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")

DEFAULT_MAX_PIXELS = 100_000_000
ARRAY_NAME = "<array>"


def _megapixels(n: float) -> str:
    return f"{n / 1e6:g} megapixels"


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ImageError:
    return ImageError(
        f"{name}: image too large ({width}x{height} pixels, limit {_megapixels(max_pixels)})"
    )


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB, C-contiguous array.

    EXIF orientation is applied; 16-bit images are scaled by their bit range (65535 -> 255); grayscale,
    palette, RGBA/LA (composited over black, the fundus background), CMYK and YCbCr are converted.
    The pixel count is checked against `max_pixels` before anything is decoded.
    """
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: cannot read file ({_reason(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{name}: not a regular file (a folder), expected an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(
            f"{name}: not a regular file ({_special_kind(st.st_mode)}), expected an image file"
        )
    if st.st_size == 0:
        raise ImageError(f"{name}: empty file")

    try:
        with warnings.catch_warnings():
            # Our own limit (max_pixels) replaces Pillow's warning threshold (89 MP), and a broken EXIF or
            # metadata block, which Pillow warns about, changes nothing we read: one line per file at most,
            # and that only for errors.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)
            with Image.open(path) as img:
                if img.format not in SUPPORTED_FORMATS:
                    raise ImageError(
                        f"{name}: unsupported image format {img.format} (retinaview reads "
                        f"{', '.join(FORMAT_NAMES)})"
                    )
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise ImageError(f"{name}: image has no pixels ({width}x{height})")
                if width * height > max_pixels:
                    raise _too_large(name, width, height, max_pixels)
                img.load()  # full decode here, so truncated data fails inside this try
                return pil_to_rgb(img, name=name)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        m = re.search(r"\((\d+) pixels\)", str(exc))
        what = _megapixels(int(m.group(1))) if m else "decompression bomb"
        raise ImageError(
            f"{name}: image too large ({what}, limit {_megapixels(max_pixels)})"
        ) from None
    except UnidentifiedImageError:
        kind = _signature(path)
        if kind is not None:
            raise ImageError(
                f"{name}: corrupt {kind} image (its header cannot be decoded)"
            ) from None
        raise ImageError(f"{name}: not an image file (cannot identify image format)") from None
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode the image") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, TypeError):
        raise ImageError(f"{name}: truncated or corrupt image data") from None
    except Exception as exc:  # a decoder plug-in can raise nearly anything on hostile input
        raise ImageError(f"{name}: cannot decode image ({_reason(exc)})") from None


# First bytes of the supported formats: a file that starts like one but does not open is corrupt, not
# "not an image".
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def _signature(path: str | os.PathLike[str]) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), None)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a plain file"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


def _composite_over_black(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 colour (H, W, C) times alpha (H, W) / 255, rounded."""
    a = alpha.astype(np.uint16)[..., None]
    return ((color.astype(np.uint16) * a + 127) // 255).astype(np.uint8)


def _scale_to_uint8(arr: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Integer or float pixel data -> uint8 by its real range (16-bit: / 257)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        a = arr.astype(np.float64)
        if not np.all(np.isfinite(a)):
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        hi = float(a.max()) if a.size else 0.0
        if hi <= 1.0:
            a = a * 255.0
        elif hi > 255.0:
            a = a * (255.0 / hi)
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    a = arr.astype(np.int64)
    if bits is None:
        hi = int(a.max()) if a.size else 0
        bits = 16 if hi <= 65535 else 32
    if bits == 16:
        return np.clip((a + 128) // 257, 0, 255).astype(np.uint8)
    hi = max(int(a.max()), 1)
    return np.clip(np.rint(a * (255.0 / hi)), 0, 255).astype(np.uint8)


def pil_to_rgb(img: Image.Image, name: str = "<image>") -> np.ndarray:
    """A (loaded) PIL image -> (H, W, 3) uint8 RGB, C-contiguous. EXIF orientation is applied."""
    with warnings.catch_warnings():
        # Pillow warns about broken EXIF blocks; the pixels are what matter (see load_image).
        warnings.simplefilter("ignore", UserWarning)
        return _pil_to_rgb(img, name)


def _pil_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    try:
        orientation = img.getexif().get(0x0112, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not make a readable image unreadable
        pass

    mode = img.mode
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        mode == "P" and "transparency" in img.info
    )
    if mode == "RGB":
        out = np.asarray(img)
    elif mode == "L":
        out = np.repeat(np.asarray(img)[:, :, None], 3, axis=2)
    elif has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        out = _composite_over_black(rgba[..., :3], rgba[..., 3])
    elif mode.startswith("I;16"):
        g = _scale_to_uint8(np.asarray(img).astype(np.uint16), bits=16)
        out = np.repeat(g[:, :, None], 3, axis=2)
    elif mode in ("I", "F"):
        g = _scale_to_uint8(np.asarray(img))
        out = np.repeat(g[:, :, None], 3, axis=2)
    else:  # 1, P, RGBX, CMYK, YCbCr, LAB, HSV, ...
        try:
            out = np.asarray(img.convert("RGB"))
        except (ValueError, OSError):
            raise ImageError(f"{name}: unsupported colour mode {mode}") from None
    if out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported pixel format (mode {mode})")
    if not out.flags.writeable or not out.flags.c_contiguous:
        out = np.array(out, order="C")
    return out


def coerce_image(image: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A path, a PIL image or a numpy array -> (H, W, 3) uint8 RGB, C-contiguous.

    Arrays may be (H, W) gray, (H, W, 1), (H, W, 3) or (H, W, 4) (composited over black); uint8, uint16
    (scaled by / 257), bool, or float in [0, 1]. Anything else raises `ImageError` naming "<array>".
    A C-contiguous (H, W, 3) uint8 array is returned as is, not copied.
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, max_pixels=max_pixels)
    if isinstance(image, Image.Image):
        name = str(getattr(image, "filename", "") or "<image>")
        try:
            image.load()
        except Exception:
            raise ImageError(f"{name}: truncated or corrupt image data") from None
        return pil_to_rgb(image, name=name)
    if not isinstance(image, np.ndarray):
        if hasattr(image, "__array__") and not isinstance(image, (bytes, bytearray)):
            try:
                image = np.asarray(image)
            except Exception:
                raise ImageError(
                    f"{ARRAY_NAME}: cannot use a {type(image).__name__} as an image"
                ) from None
        else:
            raise ImageError(f"{ARRAY_NAME}: cannot use a {type(image).__name__} as an image")
    return _coerce_array(image)


def _coerce_array(arr: np.ndarray) -> np.ndarray:
    name = ARRAY_NAME
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(
            f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {tuple(arr.shape)}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{name}: image has no pixels (shape {tuple(arr.shape)})")
    kind = arr.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ImageError(f"{name}: image contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1.0 + 1e-6:
            raise ImageError(
                f"{name}: float image values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]"
            )
        u8 = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    elif kind == "b":
        u8 = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint8:
        u8 = arr
    elif arr.dtype == np.uint16:
        u8 = _scale_to_uint8(arr, bits=16)
    elif kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ImageError(
                f"{name}: integer image values must lie in 0..255 (or be uint16), got {lo}..{hi}"
            )
        u8 = arr.astype(np.uint8)
    else:
        raise ImageError(f"{name}: unsupported image data type {arr.dtype}")
    if u8.ndim == 2:
        u8 = np.repeat(u8[:, :, None], 3, axis=2)
    elif u8.shape[2] == 4:
        u8 = _composite_over_black(u8[..., :3], u8[..., 3])
    return np.ascontiguousarray(u8)


_DIGITS = re.compile(r"(\d+)")


def _natural_key(p: Path) -> tuple:
    parts = _DIGITS.split(p.name.lower())
    key = tuple(int(s) if i % 2 else s for i, s in enumerate(parts))
    return (key, p.name)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside `folder` (IMAGE_SUFFIXES, any case), hidden files skipped,
    in natural order (img2 before img10)."""
    name = str(folder)
    p = Path(folder)
    try:
        if not p.exists():
            raise ImageError(f"{name}: no such folder")
        if not p.is_dir():
            raise ImageError(f"{name}: not a folder")
        entries = list(p.iterdir())
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot list folder ({_reason(exc)})") from None
    out = []
    for e in entries:
        if e.name.startswith(".") or e.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            if not e.is_file():
                continue
        except OSError:
            continue
        out.append(e)
    out.sort(key=_natural_key)
    return out


def file_digest(path: str | os.PathLike[str]) -> str:
    """blake2b (16-byte digest, hex) of the file's bytes: the key that follows the content.

    The engine keys its caches by it and hands it out with every result (``ExplainResult.digest``); it is
    the key for anything kept about a photograph across sessions (reviews, notes), since it survives renames
    and moves and changes when the pixels do.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        32 hexadecimal characters.

    Raises
    ------
    ImageError
        When the file cannot be read (one line naming it).
    """
    name = str(path)
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder, not a file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot read file ({_reason(exc)})") from None
    return h.hexdigest()
