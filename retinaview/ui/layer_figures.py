"""The inspector's exports, drawn with numpy and Pillow (no widgets, so they run in a worker thread).

- `save_walkthrough_gif`: one frame per layer, output layer first, down to the input (the layer-by-layer walk of the source paper, arXiv:1712.08107), the
  five class maps of S_i over the photograph.
- `save_layer_sheet`: all layers x five classes, S_i and S_k, in one PNG (the paper's figures 13-18 at once).
- `save_layer_csv`: the layer table, one row per layer, every class's sums.

``maps_of(number)`` returns the layer's input-space `LayerMaps` (from the inspector's cache, or mapped).
Colours and the n-sigma cut are the overlay viewer's: the same lookup tables on the same index images, and
every figure carries their key: a colour bar in sigma and what is shown.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from retinaview.engine.layers import INPUT_LAYER, LayerMaps, layer_rows
from retinaview.engine.prepare import HALF_RANGE, SATURATE_SIGMA, ZERO_INDEX, PreparedMaps
from retinaview.ui.colormaps import COLORMAPS, overlay_lut

BACKGROUND = (15, 16, 18)
TEXT = (230, 232, 235)
MUTED = (154, 161, 171)


@dataclass(frozen=True)
class Look:
    """The overlay viewer's drawing state that the figures follow."""

    threshold: float = 2.0
    mode: str = "positive"
    colormap: str = "green_red"
    opacity: float = 0.8


MODE_WORDS = {"positive": "for (+)", "negative": "against (-)", "absolute": "both (|S|)"}
KEY_HEIGHT = 40


def _font(size: int):
    return ImageFont.load_default(size=size)


def colour_bar(look: Look, width: int, height: int = 12) -> np.ndarray:
    """(height, width, 3) uint8: the overlay's colours from -6 to +6 sigma over the figure background,
    blank where the threshold hides them (what `ColourKey` shows in the inspector)."""
    cut = look.threshold / SATURATE_SIGMA * HALF_RANGE
    lut = overlay_lut(COLORMAPS[look.colormap], cut, look.mode).astype(np.float32)
    x = (np.arange(width) + 0.5) / width * 2 - 1
    index = np.clip(np.rint(ZERO_INDEX + x * HALF_RANGE).astype(int), 1, 255)
    rgba = lut[index]
    alpha = rgba[:, 3:] / 255.0 * look.opacity
    row = rgba[:, :3] * alpha + np.asarray(BACKGROUND, np.float32) * (1 - alpha)
    return np.repeat(np.rint(row).astype(np.uint8)[None], height, axis=0)


def draw_key(image: Image.Image, x: int, y: int, look: Look, bar_width: int = 220) -> None:
    """The colour key at (x, y): the bar with its sigma ticks, then what is shown, in one line."""
    draw = ImageDraw.Draw(image)
    font = _font(12)
    name = "score per pixel, in sigma of each map:"
    draw.text((x, y), name, fill=MUTED, font=font)
    bx = x + int(draw.textlength(name, font=font)) + 10
    image.paste(Image.fromarray(colour_bar(look, bar_width)), (bx, y + 2))
    half = int(SATURATE_SIGMA)
    for k in (-half, -half // 2, 0, half // 2, half):
        tx = bx + round((k / SATURATE_SIGMA + 1) / 2 * (bar_width - 1))
        text = f"{k:+d}" if k else "0"
        tw = draw.textlength(text, font=font)
        draw.text(
            (min(max(tx - tw / 2, bx), bx + bar_width - tw), y + 16), text, fill=MUTED, font=font
        )
    what = MODE_WORDS.get(look.mode, look.mode)
    shown = (
        f"shown: {what} beyond {look.threshold:.1f} sigma; saturates at {SATURATE_SIGMA:.0f} sigma"
    )
    draw.text((bx + bar_width + 12, y), shown, fill=MUTED, font=font)


def blend(photo: np.ndarray, prepared: PreparedMaps, c: int, look: Look) -> np.ndarray:
    """(H, W, 3) uint8: the photograph (at the map's size) with class ``c``'s thresholded map on top."""
    lut = overlay_lut(COLORMAPS[look.colormap], prepared.cut_index(c, look.threshold), look.mode)
    rgba = lut[prepared.index[c]].astype(np.float32)
    alpha = rgba[..., 3:] / 255.0 * look.opacity
    out = photo.astype(np.float32) * (1 - alpha) + rgba[..., :3] * alpha
    return np.rint(out).astype(np.uint8)


def model_photo(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photograph at the model's input size (what the maps are drawn on)."""
    if photo.shape[:2] == tuple(size):
        return photo
    return np.asarray(Image.fromarray(photo).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def _tile(image: np.ndarray, size: int) -> Image.Image:
    return Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS)


def _layer_title(ex, number: int) -> str:
    if number == INPUT_LAYER:
        return "input"
    layer = ex.layers[number - 1]
    return f"layer {number} · {layer.name} · RF {layer.rf} px"


def walkthrough_frames(
    ex, photo: np.ndarray, maps_of: Callable[[int], LayerMaps], look: Look, tile: int = 220
) -> list[Image.Image]:
    """One frame per layer from the output layer down to the input: the five classes' S_i maps."""
    photo = model_photo(photo, tuple(ex.input.shape[-2:]))
    n = len(ex.logits)
    names = ex.class_names or tuple(str(c) for c in range(n))
    pad, head = 8, 54
    frames = []
    for number in range(len(ex.layers), -1, -1):
        maps = maps_of(number)
        frame = Image.new(
            "RGB", (n * (tile + pad) + pad, tile + head + pad + KEY_HEIGHT), BACKGROUND
        )
        draw = ImageDraw.Draw(frame)
        draw_key(frame, pad, head + tile + pad + 4, look)
        draw.text((pad, 6), _layer_title(ex, number), fill=TEXT, font=_font(18))
        for c in range(n):
            x = pad + c * (tile + pad)
            frame.paste(_tile(blend(photo, maps.si, c, look), tile), (x, head))
            label = f"{c} · {names[c] if c < len(names) else c}   sum {maps.si_sum[c]:+.3g}"
            draw.text((x, 32), label, fill=MUTED, font=_font(13))
        frames.append(frame)
    return frames


def save_walkthrough_gif(
    path: str | Path,
    ex,
    photo: np.ndarray,
    maps_of: Callable[[int], LayerMaps],
    look: Look,
    frame_ms: int = 900,
) -> int:
    """Write the walk-through as an animated GIF; returns the number of frames (layers + the input)."""
    frames = walkthrough_frames(ex, photo, maps_of, look)
    frames[0].save(
        path,
        save_all=True,
        append_images=frames[1:],
        duration=[frame_ms] * (len(frames) - 1) + [2 * frame_ms],
        loop=0,
        optimize=False,
    )
    return len(frames)


def save_layer_sheet(
    path: str | Path,
    ex,
    photo: np.ndarray,
    maps_of: Callable[[int], LayerMaps],
    look: Look,
    tile: int = 132,
) -> tuple[int, int]:
    """All layers (rows, output layer first) x classes, S_i then S_k, in one PNG; returns its (width, height).

    The input row's S_k columns hold every constant spread to input space (total - input).
    """
    photo = model_photo(photo, tuple(ex.input.shape[-2:]))
    n = len(ex.logits)
    numbers = list(range(len(ex.layers), -1, -1))
    pad, label_w, head = 4, 190, 58
    width = label_w + 2 * n * (tile + pad) + 3 * pad + 12
    height = head + len(numbers) * (tile + pad) + pad + KEY_HEIGHT
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    names = ex.class_names or tuple(str(c) for c in range(n))
    for part, title in enumerate(("Sᵢ  input-dependent score", "Sₖ  constant score of the layer")):
        x0 = label_w + part * (n * (tile + pad) + 12)
        draw.text((x0, 4), title.replace("ᵢ", "_i").replace("ₖ", "_k"), fill=TEXT, font=_font(16))
        for c in range(n):
            name = names[c] if c < len(names) else str(c)
            draw.text((x0 + c * (tile + pad), 30), f"{c} · {name}"[:18], fill=MUTED, font=_font(13))
    for r, number in enumerate(numbers):
        maps = maps_of(number)
        y = head + r * (tile + pad)
        lines = _layer_title(ex, number).split(" · ")
        for k, line in enumerate(lines):
            draw.text((6, y + 6 + 18 * k), line, fill=TEXT if k == 0 else MUTED, font=_font(14))
        for part, prepared in enumerate((maps.si, maps.sk)):
            x0 = label_w + part * (n * (tile + pad) + 12)
            for c in range(n):
                if prepared is None:
                    continue
                sheet.paste(
                    _tile(blend(photo, prepared, c, look), tile), (x0 + c * (tile + pad), y)
                )
    draw_key(sheet, label_w, height - KEY_HEIGHT + 6, look)
    sheet.save(path)
    return sheet.size


def save_layer_csv(path: str | Path, ex) -> int:
    """The layer table as CSV, one row per layer (input first); returns the number of rows written."""
    rows = layer_rows(ex)
    n = len(ex.logits)
    logits = np.asarray(ex.logits, dtype=np.float64)
    header = ["number", "name", "shape", "rf", "jump"]
    for c in range(n):
        header += [f"sum_si_c{c}", f"sum_sk_c{c}", f"share_c{c}", f"residual_c{c}"]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for row in rows:
            share = row.share(logits)
            line: list[object] = [row.number, row.name, "x".join(map(str, row.shape)), row.rf]
            line.append(row.jump)
            for c in range(n):
                line += [
                    _num(row.si_sum[c]),
                    _num(row.sk_sum[c]),
                    _num(share[c]),
                    _num(row.residual[c]),
                ]
            out.writerow(line)
    return len(rows)


def _num(v: float) -> str:
    return "" if not np.isfinite(v) else repr(float(v))
