"""The retinal vessel tree: arteries and veins leaving the optic disc, arcades curving around the macula.

The tree is grown in the canonical orientation (optic disc left of the fovea, i.e. a left eye); the generator
mirrors the finished picture for right eyes. Vessels are grown step by step with smoothly varying curvature
and a little steering (arcades follow a widening circle around the fovea, everything avoids the foveal
avascular zone and does not cross the horizontal raphe temporal to the fovea). Branching follows Murray's law
(r_parent^3 = r_child^3 + r_continuation^3), so vessels thin out as they branch. Rendering is distance based on
densely resampled centre-line points, anti-aliased, with a rounded profile and a central light reflex.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from retinaview.core.synthetic.render import splat_segments

ARTERY = 0
VEIN = 1


@dataclass
class Layout:
    """Where things are in one photograph (canonical, disc-left orientation)."""

    size: int
    cx: float  # FOV centre
    cy: float
    R: float  # FOV radius
    disc: tuple[float, float]
    disc_r: float  # optic disc radius
    fovea: tuple[float, float]
    y_min: float = 0.0  # FOV cropped above/below these rows (camera mask)
    y_max: float = 0.0

    @property
    def D(self) -> float:
        return 2.0 * self.R

    @property
    def sc(self) -> float:
        """Length scale: 1.0 for a 600 px FOV diameter."""
        return self.D / 600.0

    def inside(self, x: float, y: float, margin: float = 0.0) -> bool:
        return (x - self.cx) ** 2 + (y - self.cy) ** 2 <= (self.R - margin) ** 2 and (
            self.y_min + margin <= y <= self.y_max - margin
        )


@dataclass
class Vessel:
    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    kind: int  # ARTERY or VEIN
    order: int  # 0 = trunk from the disc
    tag: np.ndarray = field(default=None)  # bool per point: beaded segment

    def __post_init__(self) -> None:
        if self.tag is None:
            self.tag = np.zeros(len(self.x), bool)

    @property
    def length(self) -> float:
        return float(np.hypot(np.diff(self.x), np.diff(self.y)).sum())


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def grow_tree(rng: np.random.Generator, lay: Layout, max_steps: int = 3000) -> list[Vessel]:
    """Grow arteries and veins from the disc; returns vessels (centre-line points), largest first."""
    sc = lay.sc
    dx, dy = lay.disc
    fx, fy = lay.fovea
    D = lay.D
    faz = 0.045 * D * rng.uniform(0.85, 1.15)
    faz2 = (2.2 * faz) ** 2
    step = 3.5 * sc
    r_min = 0.42 * sc
    heap: list = []
    counter = 0

    def push(x, y, ang, r, kind, order, mode, hemi, rho=0.0):
        nonlocal counter
        counter += 1
        heapq.heappush(heap, (-r, counter, (x, y, ang, r, kind, order, mode, hemi, rho)))

    deg = math.pi / 180.0
    for hemi in (-1, 1):
        # temporal arcades: vein and artery side by side
        a_v = hemi * rng.uniform(55, 75) * deg
        rho_v = rng.uniform(0.2, 0.25) * D
        push(dx, dy, a_v, rng.uniform(3.4, 4.0) * sc, VEIN, 0, "arc", hemi, rho_v)
        a_a = a_v + hemi * rng.uniform(-15, 15) * deg
        push(
            dx,
            dy,
            a_a,
            rng.uniform(2.5, 2.9) * sc,
            ARTERY,
            0,
            "arc",
            hemi,
            rho_v + rng.uniform(-0.03, 0.03) * D,
        )
        # nasal trunks
        a_nv = hemi * rng.uniform(110, 140) * deg
        push(dx, dy, a_nv, rng.uniform(2.5, 3.0) * sc, VEIN, 0, "free", hemi)
        push(
            dx,
            dy,
            a_nv + rng.uniform(-18, 18) * deg,
            rng.uniform(1.9, 2.2) * sc,
            ARTERY,
            0,
            "free",
            hemi,
        )
        # small macular branches straight from the disc
        for kind in (ARTERY, VEIN):
            if rng.random() < 0.6:
                push(
                    dx,
                    dy,
                    hemi * rng.uniform(5, 25) * deg,
                    rng.uniform(0.9, 1.2) * sc,
                    kind,
                    1,
                    "macular",
                    hemi,
                )
    for kind in (ARTERY, VEIN):
        if rng.random() < 0.8:
            a = math.pi + rng.uniform(-25, 25) * deg
            push(dx, dy, a, rng.uniform(1.1, 1.5) * sc, kind, 1, "free", 1 if a < math.pi else -1)

    R2 = (lay.R * 0.995) ** 2
    lcx, lcy = lay.cx, lay.cy
    ymin, ymax = lay.y_min, lay.y_max
    raphe = 0.012 * D
    budget = max_steps
    vessels: list[Vessel] = []
    while heap and budget > 0:
        _, _, (x, y, ang, r, kind, order, mode, hemi, rho) = heapq.heappop(heap)
        if order == 0:
            # leave from a random point inside the cup
            off = rng.uniform(0.1, 0.35) * lay.disc_r
            x += off * math.cos(ang)
            y += off * math.sin(ang)
        n_max = min(budget, 400)
        noise = rng.standard_normal(n_max).tolist()
        sigma = (0.006 if order == 0 else 0.014) * (1.3 if kind == ARTERY else 1.0)
        if order == 0:
            taper = math.exp(-step * 0.0008)
        else:
            taper = math.exp(-step * rng.uniform(0.0015, 0.004) / max(0.5, r / sc) ** 0.3)
        xs = [x]
        ys = [y]
        rs = [r]
        kappa = 0.0
        since = 0.0
        next_branch = rng.uniform(25, 80) * sc
        side = 1 if rng.random() < 0.5 else -1
        for i in range(n_max):
            vx = x - fx
            vy = y - fy
            desired = None
            gain = 0.0
            if mode == "arc":
                dv = math.sqrt(vx * vx + vy * vy) + 1e-6
                if x < fx + 0.1 * rho or vy * hemi > 0.55 * dv:
                    if hemi < 0:
                        tx, ty = -vy / dv, vx / dv
                    else:
                        tx, ty = vy / dv, -vx / dv
                    k = 1.2 * (dv - rho) / rho
                    desired = math.atan2(ty - k * vy / dv, tx - k * vx / dv)
                    gain = 0.12
                else:
                    mode = "temporal"
            if mode == "temporal":
                # run out towards the temporal periphery, keeping off the raphe
                desired = math.atan2(vy, vx)
                gain = 0.02
                if vy * hemi < 0.06 * D and x > fx:
                    desired = -math.pi / 2 if hemi < 0 else math.pi / 2
                    gain = 0.08
            elif mode == "outer":
                desired = math.atan2(vy, vx)
                gain = 0.035
            elif mode == "free":
                if x < fx - 0.12 * D:
                    desired = math.atan2(y - dy, x - dx)
                else:
                    desired = math.atan2(vy, vx)
                gain = 0.02
            elif mode == "macular":
                desired = math.atan2(-vy, -vx)
                gain = 0.03
            if mode != "macular" and vx * vx + vy * vy < faz2:
                desired = math.atan2(vy, vx)
                gain = 0.2
            kappa = 0.9 * kappa + sigma * noise[i]
            turn = kappa
            if desired is not None:
                turn += gain * _wrap(desired - ang)
            turn = max(-0.2, min(0.2, turn))
            ang += turn
            x += step * math.cos(ang)
            y += step * math.sin(ang)
            r *= taper
            if (x - lcx) ** 2 + (y - lcy) ** 2 > R2 or y < ymin or y > ymax:
                break
            if mode == "macular" and vx * vx + vy * vy < faz * faz:
                break
            if order > 0 and mode != "macular" and x > fx + faz and (y - fy) * hemi < raphe:
                break  # do not cross the horizontal raphe
            xs.append(x)
            ys.append(y)
            rs.append(r)
            since += step
            if since >= next_branch and r > r_min * 1.7:
                since = 0.0
                next_branch = rng.uniform(20, 60) * sc * (1.0 if order == 0 else 0.8)
                if mode == "arc":
                    # inner side (towards the macula) gets small branches, outer side larger ones
                    inner = rng.random() < 0.45
                    cside = hemi if inner else -hemi
                    ratio = rng.uniform(0.3, 0.5) if inner else rng.uniform(0.45, 0.75)
                    cmode = "macular" if inner else "outer"
                else:
                    cside = side
                    side = -side
                    ratio = rng.uniform(0.5, 0.85)
                    cmode = mode if mode in ("macular", "temporal", "outer") else "free"
                rc = r * ratio
                r = max(r * 0.72, (r**3 - rc**3) ** (1.0 / 3.0))
                if rc > r_min:
                    cang = ang + cside * rng.uniform(0.5, 1.1)
                    push(x, y, cang, rc, kind, order + 1, cmode, hemi)
            if r < r_min:
                break
        budget -= len(xs)
        if len(xs) >= 3:
            vessels.append(Vessel(np.array(xs), np.array(ys), np.array(rs), kind, order))
    return vessels


def _segments(vs: list[Vessel], only_tagged: bool = False):
    ax, ay, ar, bx, by, br = ([] for _ in range(6))
    for v in vs:
        if only_tagged:
            keep = v.tag[:-1] & v.tag[1:]
            if not keep.any():
                continue
        else:
            keep = slice(None)
        ax.append(v.x[:-1][keep])
        bx.append(v.x[1:][keep])
        ay.append(v.y[:-1][keep])
        by.append(v.y[1:][keep])
        ar.append(v.r[:-1][keep])
        br.append(v.r[1:][keep])
    if not ax:
        return [np.zeros(0, np.float32)] * 6
    return [np.concatenate(a) for a in (ax, ay, ar, bx, by, br)]


def render_vessels(shape: tuple[int, int], vessels: list[Vessel], sc: float = 1.0):
    """Render vessels; returns (artery_opacity, vein_opacity, artery_mask, vein_mask, beaded_mask)."""
    h, w = shape
    maps = {}
    for kind in (ARTERY, VEIN):
        ax, ay, ar, bx, by, br = _segments([v for v in vessels if v.kind == kind])
        rm = 0.5 * (ar + br)
        # central light reflex on the larger vessels, stronger on arteries
        reflex = np.clip((rm - 1.2) / 1.0, 0.0, 1.0) * (0.4 if kind == ARTERY else 0.15)
        # fine vessels are fainter (partly transparent) than the big ones
        weight = np.clip(0.5 + 0.35 * rm / sc, 0.6, 1.0).astype(np.float32)
        cov, op = splat_segments(
            shape, ax, ay, ar, bx, by, br, reflex.astype(np.float32), weight=weight
        )
        maps[kind] = (cov.reshape(h, w), op.reshape(h, w))
    ax, ay, ar, bx, by, br = _segments(vessels, only_tagged=True)
    beaded, _ = splat_segments(shape, ax, ay, ar, bx, by, br)
    return (
        maps[ARTERY][1],
        maps[VEIN][1],
        maps[ARTERY][0] > 0.5,
        maps[VEIN][0] > 0.5,
        beaded.reshape(h, w) > 0.5,
    )
