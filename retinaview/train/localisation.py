"""How well an explanation finds the lesions: the share of positive score that lands on lesion pixels.

For synthetic photographs of grades 1-4 the ground truth says where every lesion is. For each image we take the
explanation of the predicted class, map it back onto the photograph, and measure which fraction of its positive
score lies inside the lesion masks, next to the fraction of the field of view the lesions cover (what a map
that knows nothing would reach). Their ratio is the enrichment: 1 is chance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage
from torch import nn

SEED_BASE = 3_000_000_019  # never used by training or validation sources
LESION_MARGIN_PX = 4  # lesion masks are dilated by this much: maps are smooth at the lesion edge


def lesion_localisation(
    model: nn.Module,
    per_grade: int = 5,
    seed: int = 0,
    method: str = "rfscore",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Share of the positive explanation score that lies on the lesions of synthetic photographs.

    Parameters
    ----------
    model : torch.nn.Module
        The grader, with a ``spec``.
    per_grade : int
        Synthetic photographs of each grade 1-4 (seeds never used by training or validation).
    seed : int
        Picks another set of photographs.
    method : str
        Explanation method (`retinaview.core.api.explain`).
    progress : callable, optional
        Called with (images done, total).

    Returns
    -------
    dict
        ``per_grade`` (grade -> ``inside_fraction``, ``lesion_area_fraction``, ``enrichment``, ``n``) and
        the same three figures over all images, ``method`` and ``margin_px``.
    """
    from retinaview.core.api import explain
    from retinaview.core.synthetic import generate

    rows: dict[int, list[tuple[float, float]]] = {g: [] for g in range(1, 5)}
    total = 4 * per_grade
    done = 0
    struct = ndimage.generate_binary_structure(2, 1)
    for grade in range(1, 5):
        for i in range(per_grade):
            sample = generate(SEED_BASE + seed * 10_000 + grade * 1_000 + i, grade=grade)
            result = explain(model, sample.image, method=method, classes="predicted")
            score = result.geometry.to_photo(result.total[result.grade])
            lesions = ndimage.binary_dilation(sample.lesion_union(), struct, LESION_MARGIN_PX)
            fov = sample.fov
            pos = np.clip(np.nan_to_num(score), 0, None) * fov
            inside = float(pos[lesions].sum() / max(pos.sum(), 1e-12))
            area = float((lesions & fov).sum() / max(fov.sum(), 1))
            rows[grade].append((inside, area))
            done += 1
            if progress:
                progress(done, total)
    out: dict[str, Any] = {"per_grade": {}, "method": method, "margin_px": LESION_MARGIN_PX}
    for grade, vals in rows.items():
        inside = float(np.mean([v[0] for v in vals]))
        area = float(np.mean([v[1] for v in vals]))
        out["per_grade"][str(grade)] = {
            "inside_fraction": inside,
            "lesion_area_fraction": area,
            "enrichment": inside / max(area, 1e-12),
            "n": len(vals),
        }
    all_vals = [v for vals in rows.values() for v in vals]
    out["inside_fraction"] = float(np.mean([v[0] for v in all_vals]))
    out["lesion_area_fraction"] = float(np.mean([v[1] for v in all_vals]))
    out["enrichment"] = out["inside_fraction"] / max(out["lesion_area_fraction"], 1e-12)
    return out
