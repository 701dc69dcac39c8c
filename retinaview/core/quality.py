"""Image quality gate, independent of the model: is this a gradable fundus photograph?

A grading network answers for any picture (an all-black image gets "No DR" with high confidence), so the
photograph is checked first with simple measures:

- field of view: found (`retinaview.core.preprocess.find_fov`), its share of the image, how round it is
  (overlap of the detected region with its fitted circle) and how much of that circle lies in the picture;
- exposure inside the field of view: median brightness and the share of near-white pixels;
- focus: variance of the Laplacian of the green channel (Pech-Pacheco et al. 2000), measured after scaling
  the field of view to a fixed diameter and divided by the squared mean brightness, so neither the image
  size nor the exposure changes it;
- vessel contrast: the 99th percentile of a black top-hat of the green channel (dark, thin structures) over
  the local brightness, at the same fixed scale.

Each measure has a threshold; the first that fails gives the reason, in the words of the review store
(`retinaview.core.common.review_store.REASONS`). numpy + scipy + Pillow (and the FOV detection, which uses
scikit-image), no torch: the CLI calls it directly and the desktop app gets it through the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from retinaview.core.common.io import coerce_image
from retinaview.core.preprocess import find_fov

__all__ = ["THRESHOLDS", "QualityVerdict", "assess_quality"]

# Field-of-view diameter (pixels) at which focus and vessel contrast are measured.
WORK_DIAMETER = 256

# Limits set from clean and degraded synthetic photographs and skimage's retina picture (tests/test_quality.py):
# clean images lie at least a factor 2 inside each limit, the degraded ones outside.
THRESHOLDS = {
    "fov_fraction_min": 0.15,  # share of the image inside the field of view
    "fov_roundness_min": 0.85,  # IoU of the field of view with its fitted circle (clean: > 0.95)
    "fov_visible_min": 0.55,  # share of the fitted circle inside the picture (half-cut: < 0.3)
    "fov_border_min": 0.08,  # share of the picture outside the field of view (clean: > 0.2)
    "brightness_min": 0.15,  # median luminance 0..1 inside the field of view (clean: > 0.28)
    "brightness_max": 0.60,  # (clean: < 0.5)
    "clipped_max": 0.25,  # share of near-white (luminance > 0.92) pixels inside the field of view
    "focus_min": 0.005,  # normalised variance of the Laplacian (clean: > 0.02, blurred: < 0.002)
    "vessel_contrast_min": 0.25,  # (clean: > 0.5, blurred: < 0.14)
}


@dataclass(frozen=True)
class QualityVerdict:
    """The gate's answer: ``gradable``, and when not, a ``reason`` (one of the review store's REASONS)
    with a ``detail`` sentence naming the failed measure; ``measures`` holds every number."""

    gradable: bool
    reason: str | None
    detail: str
    measures: dict[str, float | bool] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """For JSON: gradable, reason, detail and the measures rounded to 4 digits."""
        return {
            "gradable": self.gradable,
            "reason": self.reason,
            "detail": self.detail,
            "measures": {
                k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.measures.items()
            },
        }

    @property
    def label(self) -> str:
        """``gradable`` or ``ungradable: <reason>`` for a badge."""
        return "gradable" if self.gradable else f"ungradable: {self.reason}"


def _luminance(rgb: np.ndarray) -> np.ndarray:
    f = rgb.astype(np.float32) / 255.0
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def _disc_mask(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _work_scale(rgb: np.ndarray, mask: np.ndarray, cy: float, cx: float, r: float):
    """The field of view's bounding square, resized so the circle's diameter is WORK_DIAMETER."""
    h, w = mask.shape
    y0, y1 = max(0, int(math.floor(cy - r))), min(h, int(math.ceil(cy + r)) + 1)
    x0, x1 = max(0, int(math.floor(cx - r))), min(w, int(math.ceil(cx + r)) + 1)
    crop = rgb[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1]
    s = WORK_DIAMETER / max(2.0 * r, 1.0)
    size = (max(8, round(crop.shape[1] * s)), max(8, round(crop.shape[0] * s)))
    small = np.asarray(
        Image.fromarray(crop).resize(
            size, Image.Resampling.BOX if s < 1 else Image.Resampling.BILINEAR
        )
    )
    ms = (
        np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST))
        > 127
    )
    return small, ms


def measure_quality(image) -> dict[str, float | bool]:
    """Every measure of the gate (see the module docstring) for an RGB photograph.

    Everything after the field-of-view detection runs on reduced copies (at most about 512 pixels for the
    geometry, the WORK_DIAMETER scale for exposure, focus and contrast), so a 12-megapixel photograph
    costs little more than a small one.
    """
    rgb = coerce_image(image)
    h, w = rgb.shape[:2]
    fov = find_fov(rgb)
    cy, cx = fov.center
    r = fov.radius
    step = max(1, math.ceil(max(h, w) / 512))
    m: dict[str, float | bool] = {
        "fov_found": bool(fov.found),
        "image_brightness": float(_luminance(rgb[::step, ::step]).mean()),
    }
    if not fov.found:
        return m
    mask = fov.mask[::step, ::step]
    disc = _disc_mask(mask.shape, cy / step, cx / step, r / step)
    union = float((disc | mask).sum())
    m["fov_fraction"] = float(mask.mean())
    m["fov_border"] = 1.0 - float(mask.mean())
    m["fov_roundness"] = float((disc & mask).sum()) / union if union else 0.0
    m["fov_visible"] = float(disc.sum()) / (math.pi * (r / step) ** 2) if r > 0 else 0.0
    m["fov_diameter_px"] = 2.0 * r

    small, ms = _work_scale(rgb, fov.mask, cy, cx, r)
    # Stay clear of the rim, where the resampling mixes in the black surround.
    inner = ndi.binary_erosion(ms, iterations=6)
    if inner.sum() < 64:
        return m
    li = _luminance(small)[inner]
    m["brightness"] = float(np.median(li))
    m["clipped"] = float((li > 0.92).mean())
    g = small[..., 1].astype(np.float64) / 255.0
    mean_g = float(g[inner].mean())
    lap = ndi.laplace(g)
    m["focus"] = float(lap[inner].var() / max(mean_g, 1e-3) ** 2)
    closed = ndi.grey_closing(g, size=(9, 9))
    local = ndi.uniform_filter(g, size=15)
    tophat = (closed - g) / np.maximum(local, 1e-2)
    m["vessel_contrast"] = float(np.percentile(tophat[inner], 99))
    return m


def assess_quality(image) -> QualityVerdict:
    """Gradable or "ungradable: reason" for a fundus photograph (anything `coerce_image` accepts)."""
    m = measure_quality(image)
    t = THRESHOLDS
    if not m["fov_found"]:
        b = float(m["image_brightness"])
        if b < t["brightness_min"]:
            return QualityVerdict(
                False, "too dark", f"no field of view (mean brightness {b:.2f})", m
            )
        if b > t["brightness_max"]:
            return QualityVerdict(
                False, "too bright", f"no field of view (mean brightness {b:.2f})", m
            )
        return QualityVerdict(False, "poor field", "no field of view found", m)
    checks = (
        ("fov_fraction", "min", "poor field", "field of view covers {v:.0%} of the image"),
        (
            "fov_roundness",
            "min",
            "poor field",
            "no round field of view (overlap with a circle {v:.2f})",
        ),
        ("fov_visible", "min", "poor field", "only {v:.0%} of the field of view is in the picture"),
        ("fov_border", "min", "poor field", "no border around the field of view (cropped?)"),
        ("brightness", "min", "too dark", "median brightness {v:.2f} inside the field of view"),
        ("brightness", "max", "too bright", "median brightness {v:.2f} inside the field of view"),
        ("clipped", "max", "too bright", "{v:.0%} of the field of view is clipped white"),
        ("focus", "min", "out of focus", "focus measure {v:.3g} (variance of the Laplacian)"),
        ("vessel_contrast", "min", "out of focus", "vessel contrast {v:.3g}"),
    )
    for key, side, reason, text in checks:
        if key not in m:
            continue
        v = float(m[key])
        limit = t[f"{key}_{side}"]
        if (side == "min" and v < limit) or (side == "max" and v > limit):
            return QualityVerdict(False, reason, text.format(v=v), m)
    return QualityVerdict(True, None, "", m)
