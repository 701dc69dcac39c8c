"""The photograph around the vessels: field of view, fundus background, optic disc, macula, camera.

All colours are linear-ish RGB floats in [0, 1]; the camera model (``camera``) turns them into a uint8
photograph with white balance, exposure, gamma, blur and sensor noise that vary from picture to picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from retinaview.core.synthetic.render import patch_grid, smooth_noise, smoothstep
from retinaview.core.synthetic.vessels import Layout


def make_layout(rng: np.random.Generator, size: int) -> Layout:
    """Random FOV, disc and fovea placement (canonical orientation: disc left of the fovea)."""
    c = (size - 1) / 2.0
    cropped = rng.random() < 0.3
    if cropped:
        R = size * rng.uniform(0.49, 0.505)
        cut = R * rng.uniform(0.86, 0.95)
    else:
        R = size * rng.uniform(0.455, 0.49)
        cut = R + 1.0
    cx = c + rng.uniform(-0.008, 0.008) * size
    cy = c + rng.uniform(-0.008, 0.008) * size
    D = 2.0 * R
    fx = cx + rng.uniform(-0.02, 0.07) * D
    fy = cy + rng.uniform(-0.04, 0.04) * D
    dist = rng.uniform(0.25, 0.3) * D
    tilt = np.deg2rad(rng.uniform(-2.0, 9.0))  # disc usually a little above the fovea
    ddx = fx - dist * np.cos(tilt)
    ddy = fy - dist * np.sin(tilt)
    disc_r = D / rng.uniform(6.0, 7.2) / 2.0
    return Layout(
        size=size,
        cx=float(cx),
        cy=float(cy),
        R=float(R),
        disc=(float(ddx), float(ddy)),
        disc_r=float(disc_r),
        fovea=(float(fx), float(fy)),
        y_min=float(cy - cut),
        y_max=float(cy + cut),
    )


def fov_alpha(lay: Layout) -> np.ndarray:
    """Anti-aliased field-of-view disc (with the optional top/bottom camera cut)."""
    n = lay.size
    X = np.arange(n, dtype=np.float32)[None, :] - np.float32(lay.cx)
    Y = np.arange(n, dtype=np.float32)[:, None] - np.float32(lay.cy)
    d = np.sqrt(X * X + Y * Y)
    a = np.clip(lay.R + 0.5 - d, 0.0, 1.0)
    yy = np.arange(n, dtype=np.float32)[:, None]
    cut = np.clip(np.minimum(yy - lay.y_min, lay.y_max - yy) + 0.5, 0.0, 1.0)
    return (a * cut).astype(np.float32)


def _upsample_u8(fields: np.ndarray, n: int) -> np.ndarray:
    """Resize three [0, 1] fields (3, h, w) to (3, n, n) through one fast 8-bit RGB bicubic resize."""
    u8 = (np.clip(fields, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    big = Image.fromarray(np.ascontiguousarray(u8.transpose(1, 2, 0))).resize(
        (n, n), Image.Resampling.BICUBIC
    )
    return np.asarray(big).transpose(2, 0, 1) * np.float32(1.0 / 255.0)


def background(rng: np.random.Generator, lay: Layout, fov: np.ndarray) -> np.ndarray:
    """Orange-red fundus with uneven illumination, vignetting, choroidal texture and a darker macula."""
    n = lay.size
    # pigmentation: a lighter or darker, more or less orange fundus
    pig = rng.uniform(0.0, 1.0)
    base = np.array(
        [
            rng.uniform(0.9, 1.0) - 0.08 * pig,
            rng.uniform(0.32, 0.42) - 0.07 * pig,
            rng.uniform(0.17, 0.25) - 0.05 * pig,
        ],
        np.float32,
    )
    lo = max(32, min(160, n // 4))
    step = n / lo
    X = (np.arange(lo, dtype=np.float32)[None, :] + 0.5) * step - 0.5 - np.float32(lay.cx)
    Y = (np.arange(lo, dtype=np.float32)[:, None] + 0.5) * step - 0.5 - np.float32(lay.cy)
    rr2 = (X * X + Y * Y) / np.float32(lay.R) ** 2
    # vignetting and illumination: brighter in one place, falling off towards the rim
    k = rng.uniform(1.0, 1.8)
    vig = 1.0 - rng.uniform(0.25, 0.45) * np.clip(rr2, 0, 1.3) ** k
    ang = rng.uniform(0, 2 * np.pi)
    grad = 1.0 + rng.uniform(0.0, 0.15) * (X * np.cos(ang) + Y * np.sin(ang)) / np.float32(lay.R)
    blotch = 1.0 + rng.uniform(0.01, 0.035) * smooth_noise(rng, (lo, lo), 5)
    ddx, ddy = lay.disc
    halo = np.exp(
        -((X + np.float32(lay.cx - ddx)) ** 2 + (Y + np.float32(lay.cy - ddy)) ** 2)
        / (2 * (2.0 * lay.disc_r) ** 2)
    )
    illum = vig * grad * blotch * (1.0 + rng.uniform(0.02, 0.05) * halo)
    # macula: broad darker zone (more in green and blue: xanthophyll and pigment)
    fx, fy = lay.fovea
    dm2 = ((X + np.float32(lay.cx - fx)) ** 2 + (Y + np.float32(lay.cy - fy)) ** 2) / np.float32(
        lay.D
    ) ** 2
    mac = np.exp(-dm2 / (2 * rng.uniform(0.055, 0.08) ** 2))
    # per-channel shading at low resolution, then one fast 8-bit RGB resize to full size
    mk = np.array([0.5, 1.0, 0.8], np.float32)
    m1 = rng.uniform(0.15, 0.28)
    top = 1.25
    lo_rgb = (base[:, None, None] / top) * illum[None] * (1.0 - m1 * mk[:, None, None] * mac[None])
    img = _upsample_u8(lo_rgb.astype(np.float32), n)  # (3, n, n)
    # choroidal texture: fine mottling plus a little at a coarser scale
    tex = 0.6 * rng.standard_normal((lo, lo)).astype(np.float32) + 0.8 * smooth_noise(
        rng, (lo, lo), lo // 6
    )
    tex_u8 = (np.clip(0.5 + tex / 8.0, 0, 1) * 255 + 0.5).astype(np.uint8)
    tex_f = np.asarray(Image.fromarray(tex_u8).resize((n, n), Image.Resampling.BICUBIC), np.float32)
    tex_amp = rng.uniform(0.0006, 0.0015)  # about +-2 % mottling
    shade = tex_f * np.float32(tex_amp) + np.float32(top * (1.0 - 127.5 * tex_amp))
    shade *= fov
    img = img.transpose(1, 2, 0) * shade[..., None]
    # fovea: small darker pit
    fov_sig = rng.uniform(0.012, 0.02) * lay.D
    p = patch_grid(fx, fy, 4 * fov_sig, (n, n))
    if p is not None:
        y0, y1, x0, x1, PX, PY = p
        g = np.exp(-(PX * PX + PY * PY) / (2 * fov_sig**2))
        img[y0:y1, x0:x1] *= 1.0 - g[..., None] * np.array(
            [0.15, 0.35, 0.3], np.float32
        ) * rng.uniform(0.6, 1.2)
    return img


def draw_disc(rng: np.random.Generator, img: np.ndarray, lay: Layout) -> None:
    """Bright yellowish optic disc with a paler, slightly temporal cup."""
    n = lay.size
    ddx, ddy = lay.disc
    r = lay.disc_r
    rx = r * rng.uniform(0.9, 1.0)
    ry = r * rng.uniform(1.0, 1.12)
    p = patch_grid(ddx, ddy, 1.5 * r, (n, n))
    if p is None:
        return
    y0, y1, x0, x1, PX, PY = p
    e = np.sqrt((PX / rx) ** 2 + (PY / ry) ** 2)
    th = np.arctan2(PY, PX)
    wob = (
        1.0
        + 0.04 * np.cos(3 * th + rng.uniform(0, 6.3))
        + 0.03 * np.cos(5 * th + rng.uniform(0, 6.3))
    )
    a = 1.0 - smoothstep(0.82, 1.05, e / wob)
    rim = np.array([0.96, rng.uniform(0.58, 0.68), rng.uniform(0.34, 0.44)], np.float32)
    # rim brighter on the nasal side in the canonical orientation is not needed; add gentle shading
    shade = 1.0 - 0.12 * np.clip(
        -PX / r, -1, 1
    )  # temporal side (right) a little paler in canonical view
    cup_r = r * rng.uniform(0.3, 0.55)
    cx = r * rng.uniform(0.05, 0.2)
    ec = np.sqrt(((PX - cx) / cup_r) ** 2 + (PY / (cup_r * rng.uniform(1.0, 1.15))) ** 2)
    ca = 1.0 - smoothstep(0.55, 1.1, ec)
    cup = np.array([1.0, rng.uniform(0.78, 0.88), rng.uniform(0.56, 0.7)], np.float32)
    col = rim[None, None, :] * shade[..., None] * (1.0 - ca[..., None]) + cup * ca[..., None]
    patch = img[y0:y1, x0:x1]
    lum = patch.mean(axis=2, keepdims=True) / 0.45  # keep the illumination of the surround
    col = col * np.clip(lum, 0.75, 1.05)
    a3 = a[..., None] * rng.uniform(0.8, 0.93)
    patch[...] = patch * (1.0 - a3) + col * a3


def camera(rng: np.random.Generator, img: np.ndarray, fov: np.ndarray, sc: float) -> np.ndarray:
    """Camera response: white balance, exposure, gamma, noise, blur; black outside the FOV. Returns uint8."""
    wb = np.array(
        [rng.uniform(0.93, 1.05), rng.uniform(0.9, 1.1), rng.uniform(0.85, 1.15)], np.float32
    )
    expo = np.float32(rng.uniform(0.82, 1.12))
    gamma = rng.uniform(0.8, 1.2)
    n = img.shape[0]
    levels = 2048
    amp = np.float32(rng.uniform(0.004, 0.014) * levels * 3.46)  # uniform noise with this std
    noise = rng.random((n, n), dtype=np.float32)
    noise -= np.float32(0.5)
    noise *= amp * fov
    q = img * ((levels - 1) * wb * expo)
    q += noise[..., None]
    np.clip(q, 0, levels - 1, out=q)
    lut = (np.linspace(0.0, 1.0, levels) ** gamma * 255.0 + 0.5).astype(np.uint8)
    u8 = lut[q.astype(np.int32)]
    blur = rng.uniform(0.0, 1.2) * sc
    if blur > 0.5:
        u8 = np.asarray(Image.fromarray(u8).filter(ImageFilter.BoxBlur(min(blur - 0.3, 1.0))))
    return u8
