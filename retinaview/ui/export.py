"""Exports of what the viewer shows: the view as a PNG page (maps, titles, colour bar, legend, caption), the
map alone over the photograph, an animated blend GIF, the map as .npy or CSV.

numpy, Pillow and the numpy-only core (`retinaview.core.common.render` draws every map, as on screen); no
Qt, no torch, so the functions are as usable from a script as from the File menu. An overlay is an (H, W, 4) uint8 RGBA image: colour where
a pixel is beyond the threshold, alpha 0 where the photograph shows through. Every failure to write is a
`RetinaviewError` whose message is one line naming the file.
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.render import (
    LegendInfo,
    bar_colours,
    composite,
    legend_lines,
    render_overlay,
)

__all__ = [
    "render_overlay",
    "resample_to_photo",
    "save_blend_gif",
    "save_map",
    "save_screen_png",
    "save_view_png",
]

MAP_SUFFIXES = (".npy", ".csv")
# GIF palettes are built from frames shrunk to this many pixels (enough colours, fast to quantise).
_PALETTE_SAMPLE_PIXELS = 200_000
# The view export: dark page as on screen, text in the screen's colours.
PAGE = (15, 16, 18)
TEXT = (230, 232, 235)
MUTED = (154, 161, 171)
HIDDEN = (58, 63, 71)
_FONT_FILES = ("DejaVuSans.ttf",)


def resample_to_photo(
    rgba: np.ndarray, to_photo: tuple[float, float, float, float], photo_hw: tuple[int, int]
) -> np.ndarray:
    """A model-resolution RGBA overlay placed on the photograph's pixels (nearest neighbour, so colours
    stay those of the map); ``to_photo`` = (a_y, b_y, a_x, b_x) with y_photo = a_y * y + b_y. Photograph
    pixels outside the model's view are transparent."""
    h, w = photo_hw
    a_y, b_y, a_x, b_x = to_photo
    mh, mw = rgba.shape[:2]
    rows = np.rint((np.arange(h) - b_y) / a_y).astype(np.intp)
    cols = np.rint((np.arange(w) - b_x) / a_x).astype(np.intp)
    inside = ((rows >= 0) & (rows < mh))[:, None] & ((cols >= 0) & (cols < mw))[None, :]
    out = rgba[np.ix_(np.clip(rows, 0, mh - 1), np.clip(cols, 0, mw - 1))]
    out[~inside] = 0
    return out


def save_view_png(
    path: str | os.PathLike[str],
    photo_uint8: np.ndarray,
    overlay: np.ndarray,
    *,
    threshold: float = 2.0,
    mode: str = "positive",
    colormap: str = "cyan_indigo",
    opacity: float = 0.8,
    fov: np.ndarray | None = None,
) -> Path:
    """Write the photograph with the map on top, at the photograph's resolution, as a PNG (no legend).

    ``overlay`` is either an (h, w, 4) uint8 RGBA overlay (drawn as it is) or an (h, w) float score map,
    drawn by `retinaview.core.common.render.render_overlay` with the keyword options and ``fov`` (the
    field of view over which sigma is taken, as on screen). An overlay of another size than the photograph
    is resampled to it (nearest neighbour). Returns the path.
    """
    path = Path(path)
    _check_suffix(path, (".png",), "PNG image")
    photo = _photo(photo_uint8)
    rgba = _as_overlay(overlay, threshold, mode, colormap, opacity, fov)
    out = composite(photo, _fit(rgba, photo.shape[:2]), 1.0)
    _write(path, lambda: Image.fromarray(out).save(path, format="PNG", optimize=False))
    return path


def save_screen_png(
    path: str | os.PathLike[str],
    panels: list[tuple[str, np.ndarray]],
    legend: LegendInfo | None,
    caption: list[str],
    columns: int = 1,
    map_width: int | None = None,
) -> Path:
    """Write the view as a page: the maps with their titles in ``columns`` columns, the colour bar and the
    legend, and the caption lines (image, class, method, threshold, model).

    ``panels``: (title, (h, w, 3) uint8 image) as on screen, photograph and overlay composited.
    ``map_width``: width of each map in pixels (None: the first panel's own width). Returns the path.
    """
    path = Path(path)
    _check_suffix(path, (".png",), "PNG image")
    if not panels:
        raise ValueError("nothing to export: no map is shown")
    width = int(map_width or panels[0][1].shape[1])
    columns = max(1, min(columns, len(panels)))
    scale = width / 640.0
    font = _font(max(12, round(18 * scale)))
    small = _font(max(11, round(15 * scale)))
    pad = max(6, round(12 * scale))
    title_h = font.size + pad
    cells = []
    for title, image in panels:
        h = max(1, round(image.shape[0] * width / image.shape[1]))
        resized = Image.fromarray(_photo(image)).resize((width, h), Image.Resampling.LANCZOS)
        cells.append((title, resized))
    cell_h = title_h + max(c[1].height for c in cells)
    rows = -(-len(cells) // columns)
    lines = (legend_lines(legend) if legend is not None else []) + list(caption)
    bar_h = round(22 * scale) + small.size + pad if legend is not None else 0
    text_h = len(lines) * (small.size + pad // 2) + pad
    page_w = columns * width + (columns + 1) * pad
    page_h = pad + rows * (cell_h + pad) + bar_h + text_h
    page = Image.new("RGB", (page_w, page_h), PAGE)
    draw = ImageDraw.Draw(page)
    for k, (title, img) in enumerate(cells):
        x = pad + (k % columns) * (width + pad)
        y = pad + (k // columns) * (cell_h + pad)
        draw.text((x, y), _words(title, font), fill=TEXT, font=font)
        page.paste(img, (x, y + title_h))
    y = pad + rows * (cell_h + pad)
    if legend is not None:
        inset = pad + round(small.size)
        _draw_bar(draw, legend, (inset, y, page_w - inset, y + round(16 * scale)), small)
        y += bar_h
    for line in lines:
        draw.text((pad, y), _words(line, small), fill=MUTED, font=small)
        y += small.size + pad // 2
    _write(path, lambda: page.save(path, format="PNG", optimize=False))
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
        _as_overlay(rgba_overlay_uint8, 2.0, "positive", "cyan_indigo", 0.8, None), photo.shape[:2]
    )
    h, w = photo.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
        rgba = np.asarray(Image.fromarray(rgba, "RGBA").resize(size, Image.Resampling.NEAREST))
    weights = [0.5 - 0.5 * math.cos(2 * math.pi * k / frames) for k in range(frames)]
    rgb_frames = [composite(photo, rgba, t) for t in weights]
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


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans at ``size`` pixels (it has σ and −), else Pillow's bundled font."""
    for name in _FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _words(text: str, font) -> str:
    """``text`` in characters ``font`` draws: Pillow's bundled font has no σ or minus sign."""
    if getattr(font, "path", "") and any(n in str(font.path) for n in _FONT_FILES):
        return text
    return text.replace("σ", "sd").replace("−", "-")


def _draw_bar(draw: ImageDraw.ImageDraw, legend: LegendInfo, box: tuple, font) -> None:
    """The colour bar from -6 to +6 sigma, hidden scores dark, ticks every 2 sigma."""
    x0, y0, x1, y1 = box
    s, rgba = bar_colours(legend, samples=max(2, x1 - x0))
    for i, (colour, alpha) in enumerate(zip(rgba[:, :3], rgba[:, 3], strict=True)):
        fill = tuple(int(v) for v in colour) if alpha > 0 else HIDDEN
        draw.line([(x0 + i, y0), (x0 + i, y1)], fill=fill)
    draw.rectangle([x0, y0, x1, y1], outline=MUTED)
    lo, hi = float(s[0]), float(s[-1])
    for tick in range(int(lo), int(hi) + 1, 2):
        x = x0 + (tick - lo) / (hi - lo) * (x1 - x0)
        text = _words("0" if tick == 0 else f"{tick:+d}σ".replace("-", "−"), font)
        tw = draw.textlength(text, font=font)
        draw.line([(x, y1), (x, y1 + 4)], fill=MUTED)
        draw.text((x - tw / 2, y1 + 5), text, fill=TEXT if tick == 0 else MUTED, font=font)


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
        if fov is not None and np.asarray(fov).shape != a.shape:
            raise ValueError(
                f"FOV of shape {np.asarray(fov).shape} does not match the map {a.shape}"
            )
        return render_overlay(a, fov, threshold, mode, colormap, opacity)
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
