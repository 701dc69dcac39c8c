"""Small rendering helpers shared by the synthetic fundus generator.

Everything works on float32 arrays and touches only the pixels it draws, so one photograph costs a few tens of
milliseconds. Coordinates are (x, y) in pixels with pixel centres on integers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def splat_segments(
    shape: tuple[int, int],
    ax: np.ndarray,
    ay: np.ndarray,
    ar: np.ndarray,
    bx: np.ndarray,
    by: np.ndarray,
    br: np.ndarray,
    reflex: np.ndarray | float = 0.0,
    outputs: tuple[np.ndarray, np.ndarray] | None = None,
    weight: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render line segments A->B with radii interpolated from ar to br as anti-aliased tubes.

    Each segment is scanned along its major axis, one column (or row) per integer coordinate, over the
    pixels within reach across it, so a polyline costs about (length x width) pixel evaluations. Returns two
    flat float32 maps of length H*W, combined by maximum: ``coverage`` (anti-aliased area coverage in [0, 1];
    > 0.5 means inside the tube) and ``opacity`` (coverage times a rounded tube profile, optionally with a
    central light reflex of relative strength ``reflex``, times ``weight``).
    """
    h, w = shape
    if outputs is None:
        coverage = np.zeros(h * w, np.float32)
        opacity = np.zeros(h * w, np.float32)
    else:
        coverage, opacity = outputs
    ax, ay, ar, bx, by, br = (np.asarray(v, np.float32).ravel() for v in (ax, ay, ar, bx, by, br))
    if len(ax) == 0:
        return coverage, opacity
    reflex = np.broadcast_to(np.asarray(reflex, np.float32), ax.shape)
    weight = np.broadcast_to(np.asarray(weight, np.float32), ax.shape)
    xmajor = np.abs(bx - ax) >= np.abs(by - ay)
    for flag in (True, False):
        sel = xmajor == flag
        if not sel.any():
            continue
        if flag:
            p0, p1, q0, q1 = ax[sel], bx[sel], ay[sel], by[sel]
        else:
            p0, p1, q0, q1 = ay[sel], by[sel], ax[sel], bx[sel]
        r0, r1, rf, wt = ar[sel], br[sel], reflex[sel], weight[sel]
        swap = p1 < p0
        p0, p1 = np.where(swap, p1, p0), np.where(swap, p0, p1)
        q0, q1 = np.where(swap, q1, q0), np.where(swap, q0, q1)
        r0, r1 = np.where(swap, r1, r0), np.where(swap, r0, r1)
        c0 = np.ceil(p0).astype(np.int64)
        k = np.floor(p1).astype(np.int64) - c0 + 1
        k = np.maximum(k, 0)
        total = int(k.sum())
        if total == 0:
            continue
        seg = np.repeat(np.arange(len(k)), k)
        first = np.repeat(np.cumsum(k) - k, k)
        c = c0[seg] + (np.arange(total) - first)
        dp = np.maximum(p1 - p0, 1e-6)
        t = (c - p0[seg]) / dp[seg]
        q = q0[seg] + t * (q1 - q0)[seg]
        r = r0[seg] + t * (r1 - r0)[seg]
        cos = (dp / np.sqrt(dp * dp + (q1 - q0) ** 2))[seg]
        refl = rf[seg]
        wts = wt[seg]
        reach = np.ceil((r + 1.0) / cos).astype(np.int64)
        qr = np.floor(q + 0.5).astype(np.int64)
        for H in np.unique(reach):
            s = reach == H
            off = np.arange(-H, H + 1, dtype=np.int64)
            qi = qr[s][:, None] + off[None, :]
            d = np.abs(qi - q[s][:, None]).astype(np.float32) * cos[s][:, None]
            rr = r[s][:, None]
            cov = np.clip(rr + 0.5 - d, 0.0, 1.0)
            tt = np.clip(1.0 - (d / (rr + 0.5)) ** 2, 0.0, 1.0)
            op = cov * (0.45 + 0.55 * np.sqrt(tt)) * wts[s][:, None]
            rfs = refl[s]
            if rfs.any():
                op *= 1.0 - rfs[:, None] * np.exp(-((d / (0.38 * rr + 0.3)) ** 2))
            cc = np.broadcast_to(c[s][:, None], qi.shape)
            if flag:
                ix, iy = cc, qi
            else:
                ix, iy = qi, cc
            ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h) & (cov > 0)
            idx = (iy * w + ix)[ok]
            np.maximum.at(coverage, idx, cov[ok])
            np.maximum.at(opacity, idx, op[ok])
    return coverage, opacity


def splat_polylines(shape, lines, reflex=None, outputs=None):
    """Render a list of (x, y, r) polylines with ``splat_segments``; ``reflex`` one value per line."""
    if not lines:
        h, w = shape
        return np.zeros(h * w, np.float32), np.zeros(h * w, np.float32)
    ax = np.concatenate([x[:-1] for x, _, _ in lines])
    bx = np.concatenate([x[1:] for x, _, _ in lines])
    ay = np.concatenate([y[:-1] for _, y, _ in lines])
    by = np.concatenate([y[1:] for _, y, _ in lines])
    ar = np.concatenate([r[:-1] for _, _, r in lines])
    br = np.concatenate([r[1:] for _, _, r in lines])
    if reflex is None:
        rf = 0.0
    else:
        rf = np.concatenate(
            [np.full(len(x) - 1, v, np.float32) for (x, _, _), v in zip(lines, reflex, strict=True)]
        )
    return splat_segments(shape, ax, ay, ar, bx, by, br, rf, outputs)


def densify(xs: np.ndarray, ys: np.ndarray, rs: np.ndarray, step: float = 1.0):
    """Resample a polyline at about ``step`` pixels."""
    xs = np.asarray(xs, np.float64)
    ys = np.asarray(ys, np.float64)
    rs = np.asarray(rs, np.float64)
    if len(xs) < 2:
        return xs, ys, rs
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.interp(t, s, xs), np.interp(t, s, ys), np.interp(t, s, rs)


@lru_cache(maxsize=64)
def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) Catmull-Rom interpolation weights, cell-centre aligned, edge clamped."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(pos).astype(int)
    f = pos - i0
    W = np.zeros((n_out, n_in), np.float32)
    # Catmull-Rom weights for i0-1, i0, i0+1, i0+2
    ws = (
        -0.5 * f**3 + f**2 - 0.5 * f,
        1.5 * f**3 - 2.5 * f**2 + 1.0,
        -1.5 * f**3 + 2.0 * f**2 + 0.5 * f,
        0.5 * f**3 - 0.5 * f**2,
    )
    rows = np.arange(n_out)
    for j, wj in enumerate(ws):
        np.add.at(W, (rows, np.clip(i0 - 1 + j, 0, n_in - 1)), wj.astype(np.float32))
    return W


def upsample(field: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Smooth (cubic) resize of a small 2-D float field to size (H, W).

    Uses ``np.einsum`` (no BLAS), so it stays cheap when BLAS threads compete with data-loader workers.
    """
    h, w = field.shape
    Wy = _interp_matrix(h, size[0])
    Wx = _interp_matrix(w, size[1])
    tmp = np.einsum("jk,lk->jl", np.asarray(field, np.float32), Wx)
    return np.einsum("ij,jl->il", Wy, tmp)


def smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-variance smooth random field with about ``cells`` features across."""
    cells = max(2, int(cells))
    g = rng.standard_normal((cells, cells)).astype(np.float32)
    out = upsample(g, size)
    s = float(out.std()) or 1.0
    return (out - out.mean()) / s


def patch_grid(cx: float, cy: float, radius: float, shape: tuple[int, int]):
    """Integer bounds and coordinate grids of a square patch around (cx, cy), clipped to the image.

    Returns (y0, y1, x0, x1, X, Y) where X (1, w) and Y (h, 1) are float32 pixel coordinates relative to
    (cx, cy), or None when the patch is empty.
    """
    h, w = shape
    x0 = max(0, int(np.floor(cx - radius)))
    x1 = min(w, int(np.ceil(cx + radius)) + 1)
    y0 = max(0, int(np.floor(cy - radius)))
    y1 = min(h, int(np.ceil(cy + radius)) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    X = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)
    Y = np.arange(y0, y1, dtype=np.float32) - np.float32(cy)
    return y0, y1, x0, x1, X[None, :], Y[:, None]


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
