"""Field-of-view detection, preprocessing chains and the photo <-> model geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from skimage import data

from retinaview.core.common.errors import ImageError
from retinaview.core.preprocess import CHAINS, Geometry, find_fov, preprocess

# skimage.data.retina() (CC0, 1411 x 1411): the fundus disc spans columns 9..1400 on row 705 and rows
# 6..1399 on column 705 (R+G > 40), i.e. centre about (702.5, 704.5) and radius about 696.5 px; a small
# notch sticks out of the disc at the top right.
RETINA_CENTER = (702.5, 704.5)
RETINA_RADIUS = 696.5


@pytest.fixture(scope="module")
def retina() -> np.ndarray:
    return data.retina()


def synthetic_disc(shape, center, radius, seed=0, noise=6.0) -> np.ndarray:
    """A fundus-like disc (reddish, vignetted, with dark 'vessels') on a noisy black background."""
    rng = np.random.default_rng(seed)
    H, W = shape
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    d = np.hypot(yy - center[0], xx - center[1])
    inside = d <= radius
    vignette = 1.0 - 0.5 * (d / radius) ** 2
    img = np.zeros((H, W, 3), np.float32)
    img[..., 0] = 190 * vignette
    img[..., 1] = 90 * vignette
    img[..., 2] = 40 * vignette
    img *= inside[..., None]
    vessels = (np.abs(np.sin(xx / 23.0) * 40 - (yy - center[0]) * 0.3) < 2) & inside
    img[vessels] *= 0.5
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------- FOV


def test_fov_on_real_retina(retina):
    fov = find_fov(retina)
    assert fov.found
    assert fov.mask.shape == retina.shape[:2] and fov.mask.dtype == bool
    cy, cx = fov.center
    assert abs(cy - RETINA_CENTER[0]) < 3 and abs(cx - RETINA_CENTER[1]) < 3
    assert abs(fov.radius - RETINA_RADIUS) < 4
    # The mask is the photographed disc: about pi r^2.
    assert fov.mask.sum() == pytest.approx(math.pi * RETINA_RADIUS**2, rel=0.02)


@pytest.mark.parametrize(
    ("shape", "center", "radius"),
    [
        ((500, 640), (250.0, 310.0), 200.0),  # whole disc, off centre
        ((360, 520), (180.0, 255.0), 230.0),  # cut at the top and bottom (EyePACS style)
        ((400, 400), (150.0, 220.0), 190.0),  # cut at the top only
        ((1200, 1500), (610.0, 760.0), 560.0),  # large: detected on a reduced copy
    ],
)
def test_fov_on_synthetic_disc(shape, center, radius):
    img = synthetic_disc(shape, center, radius)
    fov = find_fov(img)
    assert fov.found
    tol = max(1.5, 0.004 * radius)
    assert abs(fov.center[0] - center[0]) < tol
    assert abs(fov.center[1] - center[1]) < tol
    assert abs(fov.radius - radius) < tol


def test_fov_dark_image_with_jpeg_noise(tmp_path):
    # An underexposed fundus saved as a low-quality JPEG.
    img = (
        synthetic_disc((480, 600), (240.0, 300.0), 220.0, seed=3).astype(np.float32) * 0.3
    ).astype(np.uint8)
    p = tmp_path / "dark.jpg"
    Image.fromarray(img).save(p, quality=40)
    fov = find_fov(p)
    assert fov.found
    assert abs(fov.center[0] - 240) < 2.5 and abs(fov.center[1] - 300) < 2.5
    assert abs(fov.radius - 220) < 2.5


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((300, 400, 3), np.uint8),  # all black
        np.full((300, 400, 3), 128, np.uint8),  # flat gray
        np.zeros((5, 7, 3), np.uint8),  # tiny
        np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8),  # noise
    ],
)
def test_fov_fallback_never_crashes(img):
    fov = find_fov(img)
    assert fov.mask.shape == img.shape[:2]
    assert np.isfinite(fov.radius) and fov.radius > 0
    for chain in CHAINS:
        p = preprocess(img, chain, size=64)
        assert p.image.shape == (64, 64, 3) and np.isfinite(p.image).all()


def test_fov_not_found_falls_back_to_whole_image():
    fov = find_fov(np.zeros((300, 400, 3), np.uint8))
    assert not fov.found
    assert fov.mask.all()
    assert fov.center == (149.5, 199.5) and fov.radius == 200.0


# -------------------------------------------------------------------------------------- chains


@pytest.mark.parametrize("chain", CHAINS)
def test_chain_outputs(retina, chain):
    size = 320
    p = preprocess(retina, chain, size=size)
    assert p.chain == chain
    assert p.image.shape == (size, size, 3) and p.image.dtype == np.float32
    assert p.image.flags.c_contiguous
    assert 0.0 <= p.image.min() and p.image.max() <= 1.0
    assert p.fov.shape == (size, size) and p.fov.dtype == bool
    assert p.display.shape == (size, size, 3) and p.display.dtype == np.uint8
    assert isinstance(p.geometry, Geometry) and p.geometry.size == size
    assert p.geometry.photo_shape == retina.shape[:2]
    frac = p.fov.mean()
    if chain in ("paper", "vessels"):
        assert frac == pytest.approx(math.pi / 4, abs=0.01)
        # Black background outside the disc (except the retina's notch at the top right).
        assert np.percentile(p.image[~p.fov], 98) < 0.1
    elif chain == "graham":
        assert frac == pytest.approx(math.pi / 4 * 0.81, abs=0.01)
        np.testing.assert_allclose(p.image[~p.fov], 128 / 255, atol=1e-6)
        assert p.image[p.fov].std() > 0.03  # not flat
    else:
        assert p.fov.all()


def test_paper_chain_matches_photo(retina):
    p = preprocess(retina, "paper", size=640)
    top, left, h, w = p.geometry.crop
    assert h == w == pytest.approx(2 * RETINA_RADIUS, abs=6)
    np.testing.assert_allclose(p.display.astype(np.float32) / 255, p.image, atol=1e-6)
    # The disc fills the square: the middle row is non-black from edge to edge (allowing 1% slack).
    row = p.display[320].astype(int).sum(axis=1)
    assert row[8:-8].min() > 30


def test_paper_chain_pads_disc_cut_by_frame():
    # Disc cut at top and bottom: the square crop extends outside the photo and is padded with black.
    img = synthetic_disc((360, 520), (180.0, 255.0), 230.0)
    p = preprocess(img, "paper", size=256)
    top, left, h, w = p.geometry.crop
    assert top < 0 and top + h > 360
    assert p.display[:10].max() < 10 and p.display[-10:].max() < 10  # padding rows are black
    # FOV = disc intersected with the photographed band.
    band = 360 / (2 * 230) * 256
    assert p.fov.any(axis=1).sum() == pytest.approx(band, abs=2)
    assert not p.fov[:10].any() and not p.fov[-10:].any()


def test_vessels_chain(retina):
    p = preprocess(retina, "vessels", size=256)
    np.testing.assert_array_equal(p.image[..., 0], p.image[..., 1])
    np.testing.assert_array_equal(p.image[..., 0], p.image[..., 2])
    inside = p.image[..., 0][p.fov]
    # Illumination equalised about M = 128/255 inside the FOV; outside is 0.
    assert abs(float(np.median(inside)) - 128 / 255) < 0.05
    assert p.image[~p.fov].max() == 0.0


def test_none_chain_keeps_whole_image():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 100:] = 255
    p = preprocess(img, "none", size=64)
    assert p.geometry.crop == (0, 0, 100, 200)
    assert p.display[:, :30].max() <= 3 and p.display[:, 34:].min() >= 252


def test_preprocess_accepts_path_and_rejects_bad(tmp_path, retina):
    path = tmp_path / "retina.png"
    Image.fromarray(retina[::4, ::4]).save(path)
    assert preprocess(path, "paper", size=128).image.shape == (128, 128, 3)
    with pytest.raises(ValueError, match="unknown preprocessing chain"):
        preprocess(retina, "sharpen")
    bad = tmp_path / "bad.png"
    bad.write_text("no")
    with pytest.raises(ImageError, match="bad.png"):
        preprocess(bad)


# ------------------------------------------------------------------------------------ geometry


def _blobs(size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    m = np.exp(-((yy - 0.3 * size) ** 2 + (xx - 0.6 * size) ** 2) / (2 * (0.05 * size) ** 2))
    m -= 0.7 * np.exp(
        -((yy - 0.7 * size) ** 2 + (xx - 0.35 * size) ** 2) / (2 * (0.08 * size) ** 2)
    )
    return m


def test_geometry_round_trip_model_photo_model(retina):
    p = preprocess(retina, "paper", size=640)
    g = p.geometry
    m = _blobs(640)
    photo = g.to_photo(m)
    assert photo.shape == retina.shape[:2]
    back = g.to_model(photo)
    assert back.shape == (640, 640)
    err = np.abs(back - m)[p.fov].max()
    assert err < 0.01
    # The blob lands where the coordinate mapping says it should.
    y, x = g.model_to_photo_coords(0.3 * 640, 0.6 * 640)
    iy, ix = np.unravel_index(np.argmax(photo), photo.shape)
    assert abs(iy - y) <= 1.5 and abs(ix - x) <= 1.5


def test_geometry_round_trip_with_padding_and_small_photo():
    # Photo smaller than the model input (upsampling) and a crop that leaves the photo.
    g = Geometry(photo_shape=(150, 200), crop=(-20, 10, 190, 190), size=256)
    m = _blobs(256)
    assert (g.to_photo(m, fill=-5.0)[:, :10] == -5.0).all()  # left of the crop box
    photo = g.to_photo(m)
    assert photo.shape == (150, 200)
    back = g.to_model(photo, fill=np.nan)
    valid = g.photo_region_in_model()
    assert np.isnan(back[~valid]).all() and not np.isnan(back[valid]).any()
    assert np.abs(back - m)[valid].max() < 0.03


def test_geometry_coordinates_invert():
    g = Geometry(photo_shape=(1000, 1500), crop=(-50, 200, 1100, 1100), size=640)
    u = np.array([0.0, 10.5, 639.0])
    v = np.array([3.0, 320.0, 600.25])
    y, x = g.model_to_photo_coords(u, v)
    u2, v2 = g.photo_to_model_coords(y, x)
    np.testing.assert_allclose(u2, u, atol=1e-9)
    np.testing.assert_allclose(v2, v, atol=1e-9)
    a_y, b_y, a_x, b_x = g.affine
    np.testing.assert_allclose(a_y * u + b_y, y, atol=1e-9)
    np.testing.assert_allclose(a_x * v + b_x, x, atol=1e-9)


def test_geometry_masks_and_channels(retina):
    p = preprocess(retina, "paper", size=320)
    g = p.geometry
    fov_photo = g.to_photo(p.fov)
    assert fov_photo.dtype == bool and fov_photo.shape == retina.shape[:2]
    truth = find_fov(retina).mask
    iou = (fov_photo & truth).sum() / (fov_photo | truth).sum()
    assert iou > 0.97
    labels = np.zeros((320, 320), np.int32)
    labels[100:200, 50:150] = 7
    up = g.to_photo(labels, order=0)
    assert up.dtype == np.int32 and set(np.unique(up)) == {0, 7}
    np.testing.assert_array_equal(g.to_model(up, order=0), labels)
    rgb = g.to_photo(p.image)
    assert rgb.shape == (*retina.shape[:2], 3)
    with pytest.raises(ValueError):
        g.to_photo(np.zeros((10, 10)))
