"""One renderer: colours visible on a fundus (also to colour-blind eyes), the engine's quantisation equal to
the core's, smoothing inside the field of view, the exported page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retinaview.core.common.colormaps import PALETTES, Palette, palette
from retinaview.core.common.render import (
    LegendInfo,
    legend_lines,
    overlay,
    quantise,
    render_overlay,
    smooth,
)
from retinaview.engine.prepare import prepare_maps
from retinaview.ui.export import save_screen_png

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
# Machado, Oliveira and Fernandes (2009) simulation matrices at full severity, on linear RGB.
VISION = {
    "normal": np.eye(3),
    "deuteranopia": np.array(
        [
            [0.367322, 0.860646, -0.227968],
            [0.280085, 0.672501, 0.047413],
            [-0.01182, 0.04294, 0.968881],
        ]
    ),
    "protanopia": np.array(
        [
            [0.152286, 1.052583, -0.204868],
            [0.114503, 0.786281, 0.099216],
            [-0.003882, -0.048116, 1.051998],
        ]
    ),
    "tritanopia": np.array(
        [
            [1.255528, -0.076749, -0.178779],
            [-0.078411, 0.930809, 0.147602],
            [0.004733, 0.691367, 0.3039],
        ]
    ),
}
# CIE76 colour difference below which a colour is hard to pick out on the photograph (about 2.3 is just
# noticeable; overlays need far more).
MIN_DELTA_E = 40.0


def _lab(rgb, vision: str) -> np.ndarray:
    from skimage.color import rgb2lab

    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    seen = np.clip(VISION[vision] @ linear, 0.0, 1.0)
    srgb = np.where(seen <= 0.0031308, seen * 12.92, 1.055 * seen ** (1 / 2.4) - 0.055)
    return rgb2lab(srgb[None, None, :])[0, 0]


def _delta_e(a, b, vision: str) -> float:
    return float(np.linalg.norm(_lab(a, vision) - _lab(b, vision)))


@pytest.fixture(scope="module")
def fundus_colours() -> list[np.ndarray]:
    """The mean colour inside the field of view of every bundled sample photograph."""
    out = []
    for path in sorted(SAMPLES.glob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB").reduce(4), dtype=np.float64).reshape(-1, 3)
        out.append(rgb[rgb.max(axis=1) > 40].mean(axis=0))
    assert len(out) >= 5
    return out


def _worst_contrast(p: Palette, fundus: list[np.ndarray], vision: str) -> float:
    pairs = [(p.pos, p.neg)] + [(c, f) for c in (p.pos, p.neg) for f in fundus]
    return min(_delta_e(a, b, vision) for a, b in pairs)


# Every palette on normal vision; the colour-blind-safe one (the default) under each simulated deficiency.
CASES = [(name, "normal") for name in PALETTES] + [
    ("cyan_indigo", v) for v in VISION if v != "normal"
]


@pytest.mark.parametrize(("name", "vision"), CASES)
def test_palettes_stand_out_on_a_fundus(fundus_colours, name, vision):
    assert _worst_contrast(PALETTES[name], fundus_colours, vision) > MIN_DELTA_E


def test_the_old_red_against_colour_vanished_into_the_fundus(fundus_colours):
    """The check above can fail: the earlier red (and orange) "against" colours did not stand out."""
    old = [(240, 50, 50), (255, 140, 0)]
    assert min(_delta_e(c, f, "normal") for c in old for f in fundus_colours) < MIN_DELTA_E


def test_legacy_names_map_to_the_new_palettes():
    assert palette("green_red").name == "green_indigo"
    assert palette("blue-orange").name == "cyan_indigo"
    with pytest.raises(ValueError, match="unknown colour map"):
        palette("rainbow")


def _maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = w = 64
    yy, xx = np.mgrid[:h, :w]
    fov = (yy - 32) ** 2 + (xx - 32) ** 2 < 28**2
    maps = rng.normal(0, 1, (3, h, w)).astype(np.float32)
    maps[1] *= 1e-4
    maps[2, 20:24, 20:24] += 40  # a peak far beyond 6 sigma: saturates
    maps[:, ~fov] = 0
    return maps, fov


def test_engine_quantisation_is_the_core_renderers():
    """The screen draws the engine's prepared index images; exports draw `quantise`: the same numbers."""
    maps, fov = _maps()
    prepared = prepare_maps(maps, fov)
    for c in range(len(maps)):
        q = quantise(maps[c], fov)
        np.testing.assert_array_equal(q.index, prepared.index[c])
        assert q.sigma == pytest.approx(prepared.sigma[c])
        assert q.scale == pytest.approx(prepared.scale[c])
        for n in (0.5, 2.0, 4.5):
            assert q.cut(n) == pytest.approx(prepared.cut_index(c, n))


def test_sigma_is_taken_over_the_field_of_view():
    maps, fov = _maps()
    q = quantise(maps[0], fov)
    assert q.sigma == pytest.approx(float(np.std(maps[0][fov])))
    assert (q.index[~fov] == 0).all()
    # Over the whole image the black border shrinks sigma, so more pixels pass the same n.
    whole = render_overlay(maps[0], None, 2.0)[..., 3] > 0
    inside = render_overlay(maps[0], fov, 2.0)[..., 3] > 0
    assert whole.sum() > inside.sum()


def test_smoothing_stays_inside_the_field_of_view():
    maps, fov = _maps()
    flat = np.where(fov, 3.0, 0.0).astype(np.float32)
    out = smooth(flat, fov, 2.0)
    np.testing.assert_allclose(out[fov], 3.0, rtol=1e-5)
    assert (out[~fov] == 0).all()
    noisy = smooth(maps[0], fov, 2.0)
    assert noisy[fov].std() < 0.5 * maps[0][fov].std()
    nan = np.full_like(maps[0], np.nan)
    assert np.isnan(smooth(nan, fov)).all()


def test_overlay_leaves_hidden_pixels_untouched():
    maps, fov = _maps()
    photo = np.full((*maps[0].shape, 3), (180, 70, 40), np.uint8)
    out = overlay(photo, maps[0], fov, n=2.0, mode="absolute")
    shown = render_overlay(maps[0], fov, 2.0, "absolute")[..., 3] > 0
    assert (out[~shown] == photo[~shown]).all() and (out[shown] != photo[shown]).any(axis=1).all()


def test_view_page_has_maps_bar_and_caption(tmp_path):
    maps, fov = _maps()
    photo = np.full((*maps[0].shape, 3), (180, 70, 40), np.uint8)
    panels = [(f"{c} · class", overlay(photo, maps[c], fov)) for c in range(3)]
    info = LegendInfo(PALETTES["cyan_indigo"], "positive", 2.0, 2.5, "3 · Severe", 1.5e-4, "Total")
    lines = legend_lines(info)
    assert "cyan: raises the score of class 3 · Severe" in lines[0]
    assert "smoothed (Gaussian 2.5 px)" in lines[1] and "0.00015 score per pixel" in lines[2]
    path = save_screen_png(tmp_path / "page.png", panels, info, ["eye.png · class 3"], 2, 200)
    page = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert page.shape[1] >= 2 * 200
    # The colour bar: full cyan at its right end.
    cyan = (page[..., 0] < 40) & (page[..., 1] > 200) & (page[..., 2] > 230)
    assert cyan.sum() > 50
