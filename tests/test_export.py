"""Exports: PNG at photograph resolution, a looping blend GIF, maps as .npy/.csv, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from retinaview.core.common.colormaps import lut
from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.masks import nsigma_mask
from retinaview.ui.export import render_overlay, save_blend_gif, save_map, save_view_png


@pytest.fixture
def scene():
    """A 150 x 200 'fundus' (orange disc on black) and a signed map with one strong blob of each sign."""
    h, w = 150, 200
    yy, xx = np.mgrid[:h, :w]
    fov = (yy - 75) ** 2 + (xx - 100) ** 2 < 70**2
    photo = np.zeros((h, w, 3), np.uint8)
    photo[fov] = (190, 80, 35)
    rng = np.random.default_rng(0)
    score = rng.normal(0, 1, (h, w)).astype(np.float32)
    score += 8 * np.exp(-((yy - 60) ** 2 + (xx - 80) ** 2) / 50.0)
    score -= 8 * np.exp(-((yy - 90) ** 2 + (xx - 130) ** 2) / 50.0)
    score[~fov] = 0
    return photo, score, fov


def test_overlay_follows_the_n_sigma_mask(scene):
    _, score, fov = scene
    rgba = render_overlay(score, fov, n=3.0, mode="positive", opacity=0.5, pal="green_indigo")
    assert rgba.shape == (*score.shape, 4) and rgba.dtype == np.uint8
    shown = rgba[..., 3] > 0
    exact = nsigma_mask(score, 3.0, "positive", fov)
    # Scores are quantised to L/127 (L <= 6 sigma) before the cut: only pixels that close to it may differ.
    sigma = score[fov].std()
    near = np.abs(score - 3 * sigma) < 6 * sigma / 127
    assert not (shown != exact)[~near].any() and shown[exact & ~near].all()
    # Half opacity: the table's alpha (0.55 .. 1 by strength) halved.
    assert 0.27 * 255 <= rgba[shown][:, 3].min() and rgba[shown][:, 3].max() <= 0.51 * 255
    # Positive scores take the positive end of the table (green), never the negative end (indigo).
    table = lut("green_indigo")
    assert (rgba[shown][:, 1] >= table[128, 1]).all()
    both = render_overlay(score, fov, n=3.0, mode="absolute", pal="green_red")
    assert both[..., 3].astype(bool).sum() > shown.sum()
    assert not render_overlay(score, fov, n=3.0, mode="negative")[~fov, 3].any()


def test_png_is_at_photograph_resolution(scene, tmp_path):
    photo, score, fov = scene
    rgba = render_overlay(score, fov, n=2.0)
    path = save_view_png(tmp_path / "view.png", photo, rgba)
    out = np.asarray(Image.open(path).convert("RGB"))
    assert out.shape == photo.shape
    # Where the overlay is transparent the photograph is unchanged.
    clear = rgba[..., 3] == 0
    np.testing.assert_array_equal(out[clear], photo[clear])
    assert (out[~clear] != photo[~clear]).any()


def test_png_from_a_smaller_float_map_is_resampled(scene, tmp_path):
    photo, score, _ = scene
    path = save_view_png(
        tmp_path / "view.png", photo, score[::2, ::2], threshold=1.0, colormap="cyan_indigo"
    )
    assert Image.open(path).size == (photo.shape[1], photo.shape[0])


def test_gif_has_the_frames_and_loops(scene, tmp_path):
    photo, score, fov = scene
    rgba = render_overlay(score, fov, n=1.0, mode="absolute", opacity=0.9)
    path = save_blend_gif(tmp_path / "blend.gif", photo, rgba, frames=12, duration_ms=80)
    with Image.open(path) as gif:
        assert gif.n_frames == 12
        assert gif.info["loop"] == 0
        assert gif.info["duration"] == 80
        assert gif.size == (photo.shape[1], photo.shape[0])
        first = np.asarray(gif.convert("RGB"), dtype=np.int16)
        gif.seek(6)
        middle = np.asarray(gif.convert("RGB"), dtype=np.int16)
    shown = rgba[..., 3] > 0
    # Frame 0 is the plain photograph (up to palette error); the middle frame shows the overlay fully.
    assert np.abs(first - photo).mean() < 4
    assert np.abs(middle[shown] - photo[shown]).mean() > 30


def test_gif_shrinks_large_photographs(scene, tmp_path):
    photo, score, fov = scene
    path = save_blend_gif(
        tmp_path / "small.gif", photo, render_overlay(score, fov), frames=4, max_side=100
    )
    with Image.open(path) as gif:
        assert max(gif.size) == 100 and gif.n_frames == 4


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_map_round_trip(scene, tmp_path, suffix):
    _, score, _ = scene
    path = save_map(tmp_path / f"map{suffix}", score)
    assert path.name == f"map{suffix}"
    back = np.load(path) if suffix == ".npy" else np.loadtxt(path, delimiter=",")
    assert back.shape == score.shape
    np.testing.assert_allclose(back, score, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda d, p, s, r: save_map(d / "map.txt", s), "use .npy or .csv"),
        (lambda d, p, s, r: save_view_png(d / "view.jpg", p, r), "use .png"),
        (lambda d, p, s, r: save_blend_gif(d / "blend", p, r), "no suffix"),
        (lambda d, p, s, r: save_map(d / "missing" / "map.npy", s), "no such folder"),
        (lambda d, p, s, r: save_view_png(d / "missing" / "v.png", p, r), "no such folder"),
    ],
)
def test_bad_paths_give_one_line_naming_the_file(scene, tmp_path, call, expected):
    photo, score, fov = scene
    rgba = render_overlay(score, fov)
    with pytest.raises(RetinaviewError) as info:
        call(tmp_path, photo, score, rgba)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert str(tmp_path) in message


def test_permission_denied_is_one_line(scene, tmp_path, monkeypatch):
    _, score, _ = scene

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(np, "savetxt", refuse)
    with pytest.raises(RetinaviewError, match=r"map\.csv: cannot write, permission denied$"):
        save_map(tmp_path / "map.csv", score)
