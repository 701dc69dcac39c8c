"""Exports of what the viewer shows: the view as a PNG, an animated blend GIF, the map as .npy or CSV.

numpy, Pillow and the numpy-only core (colour tables, n-sigma masks); no Qt, no torch, so the functions are
as usable from a script as from the File menu. An overlay is an (H, W, 4) uint8 RGBA image: colour where
a pixel is beyond the threshold, alpha 0 where the photograph shows through. Every failure to write is a
`RetinaviewError` whose message is one line naming the file.
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from retinaview.core.common.colormaps import lut as colour_table
from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.masks import fov_sigma, nsigma_mask

__all__ = ["render_overlay", "save_blend_gif", "save_map", "save_view_png"]

ZERO_INDEX = 128
HALF_RANGE = 127
# Colours saturate at 6 sigma, as in the viewer (engine/prepare.py): the slider stops at 5 sigma.
SATURATE_SIGMA = 6.0
MAP_SUFFIXES = (".npy", ".csv")
# GIF palettes are built from frames shrunk to this many pixels (enough colours, fast to quantise).
_PALETTE_SAMPLE_PIXELS = 200_000


def render_overlay(
    score2d: np.ndarray,
    fov: np.ndarray | None = None,
    n: float = 2.0,
    mode: str = "positive",
    opacity: float = 0.7,
    lut: str | np.ndarray = "green-red",
) -> np.ndarray:
    """The n-sigma overlay of a signed score map, as the viewer draws it.

    Parameters
    ----------
    score2d
        (H, W) float map in score units.
    fov
        (H, W) bool field of view, or None for the whole image; sigma and the mask use it.
    n
        Threshold in FOV standard deviations (0 shows every pixel of the chosen sign).
    mode
        "positive" (S > n sigma), "negative" (S < -n sigma) or "absolute" (|S| > n sigma).
    opacity
        0..1, the alpha of the pixels shown.
    lut
        A colour map name of `retinaview.core.common.colormaps` ("green-red", "blue-orange"; "green_red" works
        too) or a (256, 4) uint8 table whose index 128 means 0.

    Returns
    -------
    (H, W, 4) uint8 RGBA: colour by score (saturating at min(max |S|, 6 sigma)), alpha 0 inside the cut and
    outside the FOV.
    """
    score = np.asarray(score2d, dtype=np.float32)
    if score.ndim != 2:
        raise ValueError(f"a score map must be 2-D, not of shape {score.shape}")
    if fov is not None:
        fov = np.asarray(fov, dtype=bool)
        if fov.shape != score.shape:
            raise ValueError(f"FOV of shape {fov.shape} does not match the map {score.shape}")
    table = _table(lut)
    sigma = fov_sigma(score, fov)
    inside = score[fov] if fov is not None and fov.any() else score
    peak = float(np.max(np.abs(inside))) if inside.size else 0.0
    limit = min(peak, SATURATE_SIGMA * sigma) if sigma > 0 else peak
    if limit > 0:
        q = score * np.float32(HALF_RANGE / limit)
        np.clip(q, -HALF_RANGE, HALF_RANGE, out=q)
        index = (np.rint(q) + ZERO_INDEX).astype(np.uint8)
    else:
        index = np.full(score.shape, ZERO_INDEX, dtype=np.uint8)
    rgba = table[index]
    mask = nsigma_mask(score, float(n), mode, fov)
    alpha = np.uint8(round(255 * min(max(float(opacity), 0.0), 1.0)))
    rgba[..., 3] = np.where(mask, alpha, np.uint8(0))
    return rgba


def save_view_png(
    path: str | os.PathLike[str],
    photo_uint8: np.ndarray,
    overlay: np.ndarray,
    *,
    threshold: float = 2.0,
    mode: str = "positive",
    colormap: str = "green-red",
    opacity: float = 0.7,
    fov: np.ndarray | None = None,
) -> Path:
    """Write the photograph with the overlay on top, at the photograph's resolution, as a PNG.

    ``overlay`` is either an (h, w, 4) uint8 RGBA overlay (drawn as it is) or an (h, w) float score map,
    rendered with `render_overlay` and the keyword options. An overlay of another size than the photograph
    is resampled to it (nearest neighbour, so the colours stay those of the map). Returns the path.
    """
    path = Path(path)
    _check_suffix(path, (".png",), "PNG image")
    photo = _photo(photo_uint8)
    rgba = _as_overlay(overlay, threshold, mode, colormap, opacity, fov)
    out = _composite(photo, _fit(rgba, photo.shape[:2]), 1.0)
    _write(path, lambda: Image.fromarray(out).save(path, format="PNG", optimize=False))
    return path


def save_blend_gif(
    path: str | os.PathLike[str],
    photo_uint8: np.ndarray,
    rgba_overlay_uint8: np.ndarray,
    frames: int = 12,
    duration_ms: int = 120,
    max_side: int | None = 1024,
) -> Path:
    """Write an animated GIF that fades the overlay in and out over the photograph, looping forever.

    One cycle of ``frames`` frames eases from the plain photograph to the full overlay and back (a cosine,
    so it lingers at both ends), ``duration_ms`` per frame. All frames share one 256-colour palette built
    from all of them, so colours do not flicker between frames. Photographs larger than ``max_side``
    pixels are shrunk to it (None keeps the full size; a 2,000 px GIF of 12 frames is tens of MB).
    """
    path = Path(path)
    _check_suffix(path, (".gif",), "GIF animation")
    if frames < 2:
        raise ValueError(f"a blend needs at least 2 frames, not {frames}")
    photo = _photo(photo_uint8)
    rgba = _fit(
        _as_overlay(rgba_overlay_uint8, 2.0, "positive", "green-red", 0.7, None), photo.shape[:2]
    )
    h, w = photo.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
        rgba = np.asarray(Image.fromarray(rgba, "RGBA").resize(size, Image.Resampling.NEAREST))
    weights = [0.5 - 0.5 * math.cos(2 * math.pi * k / frames) for k in range(frames)]
    rgb_frames = [_composite(photo, rgba, t) for t in weights]
    palette = _shared_palette(rgb_frames)
    images = [
        Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in rgb_frames
    ]
    _write(
        path,
        lambda: images[0].save(
            path,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(duration_ms),
            loop=0,
            disposal=1,
            optimize=False,
        ),
    )
    return path


def save_map(path: str | os.PathLike[str], map2d: np.ndarray) -> Path:
    """Write a 2-D float map as .npy (float32, exact) or .csv (one image row per line, ``%.6g``, no header).

    The suffix picks the format; the CSV loads back with ``np.loadtxt(path, delimiter=",")``.
    """
    path = Path(path)
    _check_suffix(path, MAP_SUFFIXES, "map")
    data = np.asarray(map2d)
    if data.ndim != 2:
        raise ValueError(f"a map must be 2-D, not of shape {data.shape}")
    data = np.ascontiguousarray(data, dtype=np.float32)
    if path.suffix.lower() == ".npy":
        _write(path, lambda: _save_npy(path, data))
    else:
        _write(path, lambda: np.savetxt(path, data, fmt="%.6g", delimiter=","))
    return path


# ------------------------------------------------------------------------------------------- helpers


def _table(lut: str | np.ndarray) -> np.ndarray:
    if isinstance(lut, str):
        return colour_table(lut.replace("_", "-"))
    table = np.asarray(lut)
    if table.shape != (256, 4) or table.dtype != np.uint8:
        raise ValueError(f"a lookup table must be (256, 4) uint8, not {table.shape} {table.dtype}")
    return table


def _photo(photo: np.ndarray) -> np.ndarray:
    a = np.asarray(photo)
    if a.dtype != np.uint8:
        raise ValueError(f"the photograph must be uint8, not {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"the photograph must be (H, W, 3) RGB, not of shape {a.shape}")
    return np.ascontiguousarray(a[..., :3])


def _as_overlay(overlay, threshold, mode, colormap, opacity, fov) -> np.ndarray:
    a = np.asarray(overlay)
    if a.ndim == 3 and a.shape[2] == 4 and a.dtype == np.uint8:
        return a
    if a.ndim == 2:
        return render_overlay(a, fov, threshold, mode, opacity, colormap)
    raise ValueError(
        f"an overlay must be (H, W, 4) uint8 RGBA or an (H, W) map, not {a.shape} {a.dtype}"
    )


def _fit(rgba: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    if rgba.shape[:2] == (h, w):
        return rgba
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(rgba), "RGBA").resize((w, h), Image.Resampling.NEAREST)
    )


def _composite(photo: np.ndarray, rgba: np.ndarray, weight: float) -> np.ndarray:
    """photo * (1 - a) + colour * a with a = weight * alpha / 255, rounded to uint8."""
    a = rgba[..., 3:4].astype(np.float32) * np.float32(weight / 255.0)
    out = photo.astype(np.float32)
    out += (rgba[..., :3].astype(np.float32) - out) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _shared_palette(frames: list[np.ndarray]) -> Image.Image:
    """A 256-colour palette image fitted to a sample of every frame (median cut keeps the rare overlay
    colours that an octree would merge into the photograph's browns)."""
    h, w = frames[0].shape[:2]
    step = max(1, math.ceil(math.sqrt(h * w * len(frames) / _PALETTE_SAMPLE_PIXELS)))
    sample = np.concatenate([f[::step, ::step] for f in frames], axis=0)
    return Image.fromarray(np.ascontiguousarray(sample)).quantize(
        256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )


def _save_npy(path: Path, data: np.ndarray) -> None:
    # np.save adds ".npy" to names without it; open the file ourselves so the name is exactly the user's.
    with open(path, "wb") as fh:
        np.save(fh, data)


def _check_suffix(path: Path, suffixes: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in suffixes:
        known = " or ".join(suffixes)
        got = f"'{path.suffix}'" if path.suffix else "no suffix"
        raise RetinaviewError(f"{path}: cannot write a {what} with {got} (use {known})")


def _write(path: Path, write) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise RetinaviewError(f"{path}: cannot write, no such folder {folder}")
    try:
        write()
    except PermissionError:
        raise RetinaviewError(f"{path}: cannot write, permission denied") from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno in errno.errorcode else str(exc)
        raise RetinaviewError(f"{path}: cannot write ({reason})") from None
