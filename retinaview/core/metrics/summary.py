"""Means with 95 % bootstrap intervals, per method and per group (all images, each grade, each lesion type).

numpy only: the rows are plain dicts, one figure each (``method``, ``metric``, ``group``, ``value``), so the
same code summarises a single process's results and the merged results of a sharded run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95


def bootstrap_interval(
    values: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval (95 %) of the mean of ``values``; the value itself when only one."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    if values.size == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    alpha = (1.0 - CONFIDENCE) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarise(
    rows: Iterable[dict], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> list[dict]:
    """One row per (group, method, metric): ``n``, ``mean``, ``lo``, ``hi`` (NaN/None values skipped).

    Rows are sorted by group (``all`` first, then grades, then lesion types), method and metric.
    """
    buckets: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in rows:
        v = r.get("value")
        if v is None or not np.isfinite(v):
            continue
        buckets[(r["group"], r["method"], r["metric"])].append(float(v))

    def order(key: tuple[str, str, str]) -> tuple:
        group = key[0]
        kind = 0 if group == "all" else 1 if group.startswith("grade") else 2
        return (kind, group, key[1], key[2])

    out = []
    for key in sorted(buckets, key=order):
        values = np.array(buckets[key])
        lo, hi = bootstrap_interval(values, resamples, seed)
        group, method, metric = key
        out.append(
            {
                "group": group,
                "method": method,
                "metric": metric,
                "n": int(values.size),
                "mean": float(values.mean()),
                "lo": lo,
                "hi": hi,
            }
        )
    return out
