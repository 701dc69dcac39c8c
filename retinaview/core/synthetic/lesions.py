"""Diabetic-retinopathy lesions, drawn on small patches with a mask that covers exactly what was drawn.

Red lesions (microaneurysms, haemorrhages, new vessels) darken the fundus multiplicatively towards dark red;
bright lesions (hard exudates, cotton-wool spots) are alpha-blended towards yellow / pale cream. Each drawer
returns nothing and ORs its pixels (alpha > 0.5, or half the peak for soft cotton-wool spots) into the mask of
its lesion type. Everything is drawn in the canonical (disc-left) orientation.
"""

from __future__ import annotations

import math

import numpy as np

from retinaview.core.synthetic.grading import LesionPlan
from retinaview.core.synthetic.render import densify, patch_grid, splat_polylines
from retinaview.core.synthetic.vessels import VEIN, Layout, Vessel

LESION_TYPES = (
    "microaneurysms",
    "haemorrhages",
    "hard_exudates",
    "cotton_wool_spots",
    "venous_beading",
    "new_vessels",
)

QUADRANT_ANGLES = {  # image coordinates (y down): atan2(y - cy, x - cx)
    0: (-math.pi, -math.pi / 2),  # upper-left
    1: (-math.pi / 2, 0.0),  # upper-right
    2: (math.pi / 2, math.pi),  # lower-left
    3: (0.0, math.pi / 2),  # lower-right
}


class Canvas:
    """The float image being drawn, its FOV alpha and the lesion masks."""

    def __init__(self, img: np.ndarray, fov: np.ndarray, lay: Layout) -> None:
        self.img = img
        self.fov = fov
        self.lay = lay
        n = img.shape[0]
        self.masks = {k: np.zeros((n, n), bool) for k in LESION_TYPES}

    def _local(self, y0, y1, x0, x1):
        patch = self.img[y0:y1, x0:x1]
        return patch, self.fov[y0:y1, x0:x1]

    def darken(self, kind, bounds, alpha, factor, threshold=0.5):
        """Multiply towards ``factor`` (per channel) with ``alpha``; mask where alpha > threshold."""
        y0, y1, x0, x1 = bounds
        patch, fv = self._local(y0, y1, x0, x1)
        a = alpha * fv
        patch *= 1.0 - a[..., None] * (1.0 - np.asarray(factor, np.float32))
        self.masks[kind][y0:y1, x0:x1] |= a > threshold

    def blend(self, kind, bounds, alpha, colour, threshold=0.5):
        """Alpha-blend towards ``colour`` scaled by the local illumination."""
        y0, y1, x0, x1 = bounds
        patch, fv = self._local(y0, y1, x0, x1)
        a = alpha * fv
        lum = float(patch.mean()) / 0.42
        col = np.asarray(colour, np.float32) * np.float32(np.clip(lum, 0.6, 1.25))
        patch[...] = patch * (1.0 - a[..., None]) + col * a[..., None]
        self.masks[kind][y0:y1, x0:x1] |= a > threshold


def blob_alpha(rng, x, y, r, shape, edge=0.8, wobble=0.15, aspect=1.0, angle=0.0, peak=1.0):
    """Anti-aliased irregular blob (radius r wobbling by harmonics 2..4); returns (bounds, alpha) or None."""
    amps = rng.uniform(0, wobble, size=3) / np.array([1.0, 1.4, 1.8])
    phases = rng.uniform(0, 2 * math.pi, size=3)
    ext = r * (1.0 + amps.sum()) * max(aspect, 1.0) + edge + 2.0
    p = patch_grid(x, y, ext, shape)
    if p is None:
        return None
    y0, y1, x0, x1, PX, PY = p
    ca, sa = math.cos(angle), math.sin(angle)
    u = (PX * ca + PY * sa) / aspect
    v = -PX * sa + PY * ca
    d = np.sqrt(u * u + v * v)
    th = np.arctan2(v, u)
    rth = r * (
        1.0
        + amps[0] * np.cos(2 * th + phases[0])
        + amps[1] * np.cos(3 * th + phases[1])
        + amps[2] * np.cos(4 * th + phases[2])
    )
    # the edge is measured in pixels along the (possibly stretched) radius
    alpha = np.clip((rth - d) / edge + 0.5, 0.0, 1.0) * np.float32(peak)
    return (y0, y1, x0, x1), alpha.astype(np.float32)


def place(
    rng, lay: Layout, extent: float, quadrant: int | None = None, centre=None, spread=None, tries=60
):
    """A random lesion centre inside the FOV, off the optic disc, optionally in one quadrant or near a point."""
    sc = lay.sc
    for _ in range(tries):
        if centre is not None:
            x = centre[0] + rng.normal(0, spread)
            y = centre[1] + rng.normal(0, spread)
        else:
            lo, hi = QUADRANT_ANGLES[quadrant] if quadrant is not None else (-math.pi, math.pi)
            a = rng.uniform(lo, hi)
            rad = lay.R * math.sqrt(rng.uniform(0.01, 0.86**2))
            x = lay.cx + rad * math.cos(a)
            y = lay.cy + rad * math.sin(a)
        if not lay.inside(x, y, extent + 4 * sc):
            continue
        if math.hypot(x - lay.disc[0], y - lay.disc[1]) < lay.disc_r * 1.15 + extent:
            continue
        if quadrant is not None and (abs(x - lay.cx) < extent + 2 or abs(y - lay.cy) < extent + 2):
            continue
        if quadrant is not None:
            q = (y > lay.cy) * 2 + (x > lay.cx)
            if q != quadrant:
                continue
        return x, y
    return None


def _near_vessel(rng, lay: Layout, vessels: list[Vessel], extent: float):
    """A point just beside a small or medium vessel (where microaneurysms tend to sit)."""
    sc = lay.sc
    cands = [v for v in vessels if v.order >= 1 and len(v.x) > 4]
    if not cands:
        return place(rng, lay, extent)
    for _ in range(20):
        v = cands[int(rng.integers(len(cands)))]
        i = int(rng.integers(1, len(v.x) - 1))
        tx, ty = v.x[i + 1] - v.x[i - 1], v.y[i + 1] - v.y[i - 1]
        tn = math.hypot(tx, ty) + 1e-9
        off = (v.r[i] + rng.uniform(3.0, 12.0) * sc) * (1 if rng.random() < 0.5 else -1)
        x = v.x[i] - ty / tn * off
        y = v.y[i] + tx / tn * off
        if (
            lay.inside(x, y, extent + 4 * sc)
            and math.hypot(x - lay.disc[0], y - lay.disc[1]) > lay.disc_r * 1.2 + extent
        ):
            return x, y
    return place(rng, lay, extent)


RED_DARK = (0.6, 0.3, 0.42)


def microaneurysms(rng, cv: Canvas, vessels, count: int) -> int:
    lay, sc = cv.lay, cv.lay.sc
    drawn = 0
    for _ in range(count):
        r = rng.uniform(2.0, 3.6) * sc
        pos = _near_vessel(rng, lay, vessels, r) if rng.random() < 0.7 else place(rng, lay, r)
        if pos is None:
            continue
        res = blob_alpha(
            rng,
            pos[0],
            pos[1],
            r,
            cv.img.shape[:2],
            edge=1.2,
            wobble=0.05,
            peak=rng.uniform(0.9, 1.0),
        )
        if res is None:
            continue
        f = np.array(RED_DARK, np.float32) * np.float32(rng.uniform(0.85, 1.1))
        cv.darken("microaneurysms", res[0], res[1], f)
        drawn += 1
    return drawn


def haemorrhages(rng, cv: Canvas, quadrants, per_quadrant) -> int:
    lay, sc = cv.lay, cv.lay.sc
    drawn = 0
    for q, k in zip(quadrants, per_quadrant, strict=True):
        for _ in range(k):
            kind = rng.random()
            if kind < 0.4:  # dot
                r, aspect, wob, edge = rng.uniform(3.5, 6.0) * sc, 1.0, 0.1, 1.6
            elif kind < 0.8:  # blot
                r, aspect, wob, edge = rng.uniform(5.5, 11.0) * sc, rng.uniform(1.0, 1.4), 0.3, 2.6
            else:  # flame: elongated along the nerve fibres
                r, aspect, wob, edge = rng.uniform(3.0, 5.0) * sc, rng.uniform(2.2, 3.5), 0.12, 2.0
            extent = r * aspect * 1.5
            pos = place(rng, lay, extent, quadrant=q)
            if pos is None:
                continue
            angle = (
                math.atan2(pos[1] - lay.disc[1], pos[0] - lay.disc[0])
                if aspect > 2
                else rng.uniform(0, math.pi)
            )
            res = blob_alpha(
                rng,
                pos[0],
                pos[1],
                r,
                cv.img.shape[:2],
                edge=edge,
                wobble=wob,
                aspect=aspect,
                angle=angle,
            )
            if res is None:
                continue
            f = np.array(
                [rng.uniform(0.55, 0.68), rng.uniform(0.22, 0.34), rng.uniform(0.32, 0.45)],
                np.float32,
            )
            cv.darken("haemorrhages", res[0], res[1], f)
            drawn += 1
    return drawn


def hard_exudates(rng, cv: Canvas, clusters: int) -> int:
    lay, sc = cv.lay, cv.lay.sc
    fx, fy = lay.fovea
    drawn = 0
    for _ in range(clusters):
        centre = (
            place(rng, lay, 40 * sc, centre=(fx, fy), spread=0.13 * lay.D)
            if rng.random() < 0.75
            else None
        )
        if centre is None:
            centre = place(rng, lay, 40 * sc)
        if centre is None:
            continue
        circinate = rng.random() < 0.55
        n = int(rng.integers(8, 26))
        ring = rng.uniform(14, 36) * sc
        a0 = rng.uniform(0, 2 * math.pi)
        arc = rng.uniform(math.pi, 2 * math.pi)
        col = np.array([0.96, rng.uniform(0.76, 0.86), rng.uniform(0.3, 0.45)], np.float32)
        for _ in range(n):
            if circinate:
                a = a0 + rng.uniform(0, arc)
                rad = ring * rng.uniform(0.85, 1.15)
                x, y = centre[0] + rad * math.cos(a), centre[1] + rad * math.sin(a)
            else:
                x = centre[0] + rng.normal(0, 10 * sc)
                y = centre[1] + rng.normal(0, 10 * sc)
            r = rng.uniform(1.3, 3.8) * sc
            if (
                not lay.inside(x, y, r + 4 * sc)
                or math.hypot(x - lay.disc[0], y - lay.disc[1]) < lay.disc_r * 1.2 + r
            ):
                continue
            res = blob_alpha(
                rng, x, y, r, cv.img.shape[:2], edge=0.8, wobble=0.25, peak=rng.uniform(0.85, 1.0)
            )
            if res is None:
                continue
            cv.blend("hard_exudates", res[0], res[1], col)
            drawn += 1
    return drawn


def cotton_wool_spots(rng, cv: Canvas, count: int) -> int:
    """Pale, fluffy, soft-edged spots, mostly along the arcades and around the disc."""
    lay, sc = cv.lay, cv.lay.sc
    drawn = 0
    for _ in range(count):
        r = rng.uniform(7.0, 13.0) * sc
        pos = place(rng, lay, 1.7 * r, centre=lay.disc, spread=0.22 * lay.D)
        if pos is None:
            continue
        angle = math.atan2(pos[1] - lay.disc[1], pos[0] - lay.disc[0]) + math.pi / 2
        peak = rng.uniform(0.55, 0.75)
        res = blob_alpha(
            rng,
            pos[0],
            pos[1],
            r,
            cv.img.shape[:2],
            edge=0.8 * r,
            wobble=0.25,
            aspect=rng.uniform(1.0, 1.5),
            angle=angle,
            peak=1.0,
        )
        if res is None:
            continue
        (y0, y1, x0, x1), a = res
        # fluffy: a few soft lobes modulate the inside
        h, w = a.shape
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        fluff = np.zeros_like(a)
        for _k in range(5):
            ly, lx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
            fluff += np.exp(-((yy - ly) ** 2 + (xx - lx) ** 2) / (2 * (0.35 * r) ** 2))
        a = a * (0.55 + 0.45 * np.clip(fluff, 0, 1)) * np.float32(peak)
        col = np.array([0.93, rng.uniform(0.7, 0.78), rng.uniform(0.5, 0.6)], np.float32)
        cv.blend("cotton_wool_spots", (y0, y1, x0, x1), a, col, threshold=0.35 * peak)
        drawn += 1
    return drawn


def venous_beading(rng, lay: Layout, vessels: list[Vessel], count: int) -> int:
    """Give ``count`` vein segments a sausage-like calibre variation; tags the beaded points."""
    sc = lay.sc
    done = 0
    veins = [v for v in vessels if v.kind == VEIN and len(v.x) > 20]
    for _ in range(count):
        for _attempt in range(30):
            if not veins:
                return done
            v = veins[int(rng.integers(len(veins)))]
            if not v.tag.any():  # resample finely so the beads are smooth
                v.x, v.y, v.r = densify(v.x, v.y, v.r, step=0.8)
                v.tag = np.zeros(len(v.x), bool)
            ok = (
                (v.r > 1.3 * sc)
                & (v.r < 3.4 * sc)
                & (np.hypot(v.x - lay.disc[0], v.y - lay.disc[1]) > 2.5 * lay.disc_r)
                & ((v.x - lay.cx) ** 2 + (v.y - lay.cy) ** 2 < (0.85 * lay.R) ** 2)
                & ~v.tag
            )
            idx = np.nonzero(ok)[0]
            if len(idx) < 10:
                continue
            i0 = int(idx[rng.integers(len(idx))])
            s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(v.x), np.diff(v.y)))])
            L = rng.uniform(55, 110) * sc
            i1 = int(np.searchsorted(s, s[i0] + L))
            if i1 >= len(v.x) or not ok[i0:i1].all():
                continue
            t = s[i0:i1] - s[i0]
            base = np.maximum(v.r[i0:i1], 1.7 * sc)
            lam = rng.uniform(4.5, 6.5) * float(base.mean())
            env = np.sqrt(np.clip(np.sin(np.pi * np.clip(t / t[-1], 0, 1)), 0, 1))
            amp = rng.uniform(0.45, 0.65)
            v.r[i0:i1] = base * (
                1.0 + env * amp * np.sin(2 * np.pi * t / lam + rng.uniform(0, 6.3))
            )
            v.tag[i0:i1] = True
            done += 1
            break
    return done


def new_vessels(rng, cv: Canvas, vessels: list[Vessel], at_disc: bool) -> str | None:
    """A tuft of fine, tortuous new vessels at the disc (NVD) or on a vein elsewhere (NVE)."""
    lay, sc = cv.lay, cv.lay.sc
    site = None
    if at_disc:
        a = rng.uniform(0, 2 * math.pi)
        off = rng.uniform(0.0, 0.6) * lay.disc_r
        centre = (lay.disc[0] + off * math.cos(a), lay.disc[1] + off * math.sin(a))
        rho = rng.uniform(0.8, 1.3) * lay.disc_r
        site = "disc"
    else:
        veins = [v for v in vessels if v.kind == VEIN and v.order <= 2]
        centre = None
        rho = rng.uniform(16, 30) * sc
        for _ in range(40):
            if not veins:
                break
            v = veins[int(rng.integers(len(veins)))]
            i = int(rng.integers(len(v.x)))
            x, y = float(v.x[i]), float(v.y[i])
            if (
                lay.inside(x, y, rho + 6 * sc)
                and math.hypot(x - lay.disc[0], y - lay.disc[1]) > 3 * lay.disc_r
            ):
                centre = (x, y)
                break
        if centre is None:
            centre = place(rng, lay, rho + 6 * sc)
        if centre is None:
            return None
        site = "elsewhere"
    xs = []
    n_loops = int(rng.integers(4, 10))
    for _ in range(n_loops):
        cx = centre[0] + rng.normal(0, 0.3 * rho)
        cy = centre[1] + rng.normal(0, 0.3 * rho)
        k = np.arange(1, 6)
        amp = rho * rng.uniform(0.15, 0.45) / k**0.6
        cxk = rng.normal(0, 1, 5) * amp
        cyk = rng.normal(0, 1, 5) * amp
        sxk = rng.normal(0, 1, 5) * amp
        syk = rng.normal(0, 1, 5) * amp
        t = np.linspace(0, 2 * math.pi, 160)[:, None]
        ck, sk = np.cos(k * t), np.sin(k * t)
        px = cx + (ck * cxk + sk * sxk).sum(1)
        py = cy + (ck * cyk + sk * syk).sum(1)
        # keep to the tuft and the FOV
        keep = (np.hypot(px - centre[0], py - centre[1]) < 1.25 * rho) & (
            (px - lay.cx) ** 2 + (py - lay.cy) ** 2 < (lay.R - 4 * sc) ** 2
        )
        keep &= (py > lay.y_min + 4 * sc) & (py < lay.y_max - 4 * sc)
        if keep.sum() < 10:
            continue
        # split at dropped points so we don't bridge gaps
        runs = np.split(np.arange(160), np.nonzero(~keep)[0])
        for run in runs:
            run = run[keep[run]]
            if len(run) < 4:
                continue
            r = np.full(len(run), rng.uniform(0.5, 0.8) * max(sc, 0.75))
            xs.append((px[run], py[run], r))
    if not xs:
        return None
    n = cv.img.shape[0]
    cov, op = splat_polylines((n, n), xs)
    cov = cov.reshape(n, n)
    op = op.reshape(n, n)
    ext = 1.3 * rho + 4
    p = patch_grid(centre[0], centre[1], ext, (n, n))
    y0, y1, x0, x1 = p[:4]
    a = op[y0:y1, x0:x1] * np.float32(rng.uniform(0.75, 0.95))
    f = np.array([0.62, 0.3, 0.42], np.float32)
    patch = cv.img[y0:y1, x0:x1]
    fv = cv.fov[y0:y1, x0:x1]
    patch *= 1.0 - (a * fv)[..., None] * (1.0 - f)
    cv.masks["new_vessels"][y0:y1, x0:x1] |= (cov[y0:y1, x0:x1] > 0.5) & (fv > 0.5)
    return site


def preretinal_haemorrhage(rng, cv: Canvas) -> bool:
    """A larger boat-shaped haemorrhage with a flat upper fluid level."""
    lay, sc = cv.lay, cv.lay.sc
    rho = rng.uniform(20, 36) * sc
    pos = place(rng, lay, 1.3 * rho, centre=lay.fovea, spread=0.2 * lay.D)
    if pos is None:
        return False
    n = cv.img.shape[0]
    p = patch_grid(pos[0], pos[1], 1.3 * rho + 3, (n, n))
    if p is None:
        return False
    y0, y1, x0, x1, PX, PY = p
    rx = rho * rng.uniform(1.1, 1.35)
    d = np.sqrt((PX / rx) ** 2 + (PY / rho) ** 2) * rho
    th = np.arctan2(PY, PX)
    d = d / (
        1.0
        + 0.06 * np.cos(3 * th + rng.uniform(0, 6.3))
        + 0.04 * np.cos(5 * th + rng.uniform(0, 6.3))
    )
    top = -rho * rng.uniform(0.0, 0.4)
    a = np.clip((rho - d) / 2.5 + 0.5, 0, 1) * np.clip((PY - top) / 1.2 + 0.5, 0, 1)
    shade = 1.0 - 0.3 * np.clip((PY - top) / (rho - top), 0, 1)
    a = (a * rng.uniform(0.88, 0.97)).astype(np.float32)
    f = np.array([0.52, 0.16, 0.24], np.float32)
    patch = cv.img[y0:y1, x0:x1]
    fv = cv.fov[y0:y1, x0:x1]
    aa = (a * fv)[..., None]
    patch[...] = patch * (1.0 - aa * (1.0 - f * shade[..., None]))
    cv.masks["haemorrhages"][y0:y1, x0:x1] |= (a * fv) > 0.5
    return True


def draw_lesions(rng, cv: Canvas, plan: LesionPlan, vessels: list[Vessel]) -> dict:
    """Draw everything in ``plan`` (except venous beading, applied to the vessels before rendering)."""
    found = {}
    found["haemorrhages"] = haemorrhages(
        rng, cv, plan.haemorrhage_quadrants, plan.haemorrhages_per_quadrant
    )
    found["microaneurysms"] = microaneurysms(rng, cv, vessels, plan.microaneurysms)
    found["hard_exudates"] = hard_exudates(rng, cv, plan.exudate_clusters)
    found["cotton_wool_spots"] = cotton_wool_spots(rng, cv, plan.cotton_wool_spots)
    sites = []
    for i in range(plan.new_vessels):
        site = new_vessels(rng, cv, vessels, plan.nv_at_disc if i == 0 else False)
        if site:
            sites.append(site)
    found["new_vessels"] = sites
    found["preretinal_haemorrhage"] = preretinal_haemorrhage(rng, cv) if plan.preretinal else False
    return found
