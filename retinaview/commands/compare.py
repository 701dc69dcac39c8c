"""``retinaview compare``: explanation methods side by side on a data set, with the figures that say which
map to trust (deletion, insertion, ROAD, localisation against lesion masks, parameter randomisation, time and
memory), summarised per method, per grade and per lesion type with 95 % bootstrap intervals.

Every (image, method) result is written to ``OUT/cache/<image>/<method>.json`` as soon as it is computed, so
an interrupted run resumes where it stopped (results computed with other settings are computed again).
Under ``torchrun --nproc-per-node N`` each process takes every N-th image (a GPU per process when there are
GPUs) and the first one merges the results from ``OUT`` (which all processes must share).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

DEFAULT_METHODS = "rfscore,saliency,gradxinput,ig,cam,gradcam"
# The figures of the printed table and the PNG, in this order.
TABLE_METRICS = (
    "deletion_gray",
    "deletion_blur",
    "insertion_gray",
    "insertion_blur",
    "road_morf",
    "road_lerf",
    "mass",
    "rank",
    "pointing",
    "auc",
    "share",
    "sanity_rho_top",
    "sanity_rho_all",
    "check",
    "seconds",
    "peak_mb",
)
# What a good map does with each figure (the figure's title says it).
BETTER = {
    "deletion_gray": "lower",
    "deletion_blur": "lower",
    "road_morf": "lower",
    "sanity_rho_top": "lower",
    "sanity_rho_all": "lower",
    "check": "lower",
    "seconds": "lower",
    "peak_mb": "lower",
    "share": "chance level",
}
CACHE_VERSION = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="explanation methods side by side: faithfulness, localisation, sanity, time",
        description="Explain every image of a data set with each method and measure each map: deletion and "
        "insertion AUC (Petsiuk et al. 2018; half-gray and blurred fills, inside the field of view), ROAD "
        "(Rong et al. 2022), relevance mass and rank accuracy, pointing game and detection AUC against lesion "
        "masks (synthetic images bring theirs; --masks for a folder), parameter randomisation (Adebayo et al. "
        "2018; --sanity K), time and peak memory. Writes OUT/cache/ (resumable), OUT/images/<image>/<method>"
        ".csv, OUT/results.csv, OUT/summary.csv, OUT/summary.json and OUT/summary.png. Under torchrun the "
        "images are shared among the processes.",
    )
    p.add_argument("--model", default="default", help="checkpoint file or 'default' (bundled)")
    p.add_argument("--data", required=True, help="image folder DIR or synth:N:SEED")
    p.add_argument(
        "--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS})"
    )
    p.add_argument("--classes", choices=("predicted", "all"), default="predicted")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (and resume cache)")
    p.add_argument(
        "--labels", help="labels CSV of DIR (default: the CSV in DIR, when there is one)"
    )
    p.add_argument(
        "--masks", metavar="MASKS", help="lesion masks of DIR: MASKS/<type>/<image>[_*].png"
    )
    p.add_argument(
        "--size", type=int, help="side of synthetic photographs (default: the model's input)"
    )
    p.add_argument(
        "--steps", type=int, default=100, help="deletion and insertion steps (default 100)"
    )
    p.add_argument(
        "--fills",
        default="gray,blur",
        help="deletion and insertion fills: gray, blur, both (gray,blur) or none (no curves: only "
        "localisation, checks and time, which need no perturbed forward passes)",
    )
    p.add_argument(
        "--blur-sigma", type=float, default=5.0, help="the blurred fill's sigma in pixels"
    )
    p.add_argument("--no-road", action="store_true", help="skip ROAD (a sparse solve per step)")
    p.add_argument(
        "--sanity",
        type=int,
        default=0,
        metavar="K",
        help="parameter randomisation on the first K images (one explanation per layer)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="a parameter of one method, repeatable: e.g. ig.steps=64, gradcam.layer=body.layer9",
    )
    p.add_argument(
        "--batch", type=int, help="perturbed images per forward pass (default: by memory)"
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def parse_params(methods: list[str], items: list[str]) -> dict[str, dict]:
    """``METHOD.KEY=VALUE`` items -> {method: {key: value}}; one-line `RetinaviewError` when malformed."""
    from retinaview.commands.explain import parse_value
    from retinaview.core.api import check_params
    from retinaview.core.common.errors import RetinaviewError

    params: dict[str, dict] = {m: {} for m in methods}
    for item in items:
        lhs, sep, value = item.partition("=")
        name, dot, key = lhs.partition(".")
        if not sep or not dot or not key:
            raise RetinaviewError(f"--param {item!r} is not METHOD.KEY=VALUE")
        if name not in params:
            raise RetinaviewError(
                f"--param {item!r}: {name} is not among --methods ({', '.join(methods)})"
            )
        params[name][key.strip().replace("-", "_")] = parse_value(value.strip())
    for m in methods:
        check_params(m, params[m])
    return params


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def record_rows(record: dict) -> list[dict]:
    """A cached (image, method) record -> one row per figure: image, method, class, grade, predicted,
    metric, lesion (empty unless a localisation figure of one lesion type) and value."""
    base = {
        "image": record["image"],
        "method": record["method"],
        "grade": record["grade"],
        "predicted": record["predicted"],
    }
    rows = []
    for cls, rec in record["classes"].items():
        for metric, value in rec["metrics"].items():
            rows.append({**base, "class": int(cls), "metric": metric, "lesion": "", "value": value})
        for lesion, figures in rec["localisation"].items():
            for metric, value in figures.items():
                rows.append(
                    {
                        **base,
                        "class": int(cls),
                        "metric": metric,
                        "lesion": "" if lesion == "any" else lesion,
                        "value": value,
                    }
                )
    per_method = {
        "seconds": record["seconds"],
        "peak_mb": record["peak_bytes"] / 2**20,
        "check": record["check"],
    }
    for step in record.get("sanity") or []:
        per_method.setdefault("sanity_rho_top", step[1])
        per_method["sanity_rho_all"] = step[1]
    for metric, value in per_method.items():
        rows.append(
            {**base, "class": record["predicted"], "metric": metric, "lesion": "", "value": value}
        )
    return rows


def grouped(rows: list[dict]) -> list[dict]:
    """Rows -> summary rows: every figure under ``all`` and ``grade G``; lesion figures under ``lesion T``."""
    out = []
    for r in rows:
        if r["lesion"]:
            out.append({**r, "group": f"lesion {r['lesion']}"})
            continue
        out.append({**r, "group": "all"})
        grade = r["grade"] if r["grade"] is not None else r["predicted"]
        out.append({**r, "group": f"grade {grade}"})
    return out


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def format_table(summary: list[dict], methods: list[str]) -> str:
    """The ``all`` group as text: one line per method, one column per figure, mean [95 % interval]."""
    cells = {(s["method"], s["metric"]): s for s in summary if s["group"] == "all"}
    metrics = [m for m in TABLE_METRICS if any((meth, m) in cells for meth in methods)]
    width = max(len(m) for m in methods) + 2
    lines = []
    for metric in metrics:
        note = BETTER.get(metric, "higher")
        lines.append(
            f"{metric} ({note} is better)" if note != "chance level" else f"{metric} (chance level)"
        )
        for meth in methods:
            s = cells.get((meth, metric))
            if s is None:
                continue
            lines.append(
                f"  {meth:<{width}}{s['mean']:10.4f}  [{s['lo']:.4f}, {s['hi']:.4f}]  n={s['n']}"
            )
    return "\n".join(lines)


def draw_figure(summary: list[dict], methods: list[str], path: Path, title: str) -> None:
    """A PNG of the ``all`` group: one panel per figure, one bar per method with its 95 % interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {(s["method"], s["metric"]): s for s in summary if s["group"] == "all"}
    metrics = [m for m in TABLE_METRICS if any((meth, m) in cells for meth in methods)]
    if not metrics:
        return
    cols = min(4, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 0.45 * len(methods) * rows + 1.6 * rows)
    )
    axes = list(getattr(axes, "flat", [axes]))
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes, metrics, strict=False):
        ys, means, errs, names = [], [], [[], []], []
        for i, meth in enumerate(methods):
            s = cells.get((meth, metric))
            if s is None:
                continue
            ys.append(i)
            means.append(s["mean"])
            errs[0].append(s["mean"] - s["lo"])
            errs[1].append(s["hi"] - s["mean"])
            names.append(meth)
        ax.barh(ys, means, xerr=errs, color=[colours(y % 10) for y in ys], capsize=3)
        ax.set_yticks(ys, names)
        ax.invert_yaxis()
        ax.set_title(
            f"{metric} ({BETTER.get(metric, 'higher')}{'' if metric == 'share' else ' better'})"
        )
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def _distributed():
    """(rank, world, torch.distributed or None): a process group when started by torchrun with N > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), dist


def _device(choice: str, world: int):
    import torch

    if choice == "auto" and torch.cuda.is_available() and world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return None if choice == "auto" else choice


def compute_item(
    item, index, model, methods, params, classes, settings, key, out, sanity, device, say
):
    """Every method on one image; returns how many (method) results failed. Cached results are kept."""
    import numpy as np

    import retinaview.core.api as api
    from retinaview.core.common.errors import RetinaviewError
    from retinaview.core.metrics.cost import measure
    from retinaview.core.metrics.randomisation import parameter_randomisation
    from retinaview.core.metrics.scores import score_explanation
    from retinaview.core.models.registry import spec_of
    from retinaview.core.preprocess import preprocess

    todo = []
    for method in methods:
        path = out / "cache" / item.key / f"{method}.json"
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == key[method]:
                continue
        except (OSError, ValueError):
            pass
        todo.append((method, path))
    if not todo:
        return 0
    spec = spec_of(model)
    try:
        loaded = item.load()
        pre = preprocess(loaded.image, spec.preprocessing, spec.input_size)
    except RetinaviewError as exc:
        say(f"{item.name}: {exc}")
        return len(todo)
    except Exception as exc:  # an unreadable image must not stop the others
        say(f"{item.name}: cannot be read: {type(exc).__name__}: {exc}")
        return len(todo)
    for note in loaded.notes:
        say(note)
    masks = None
    if loaded.masks is not None:
        masks = {
            kind: pre.geometry.to_model(m, order=0).astype(bool) & pre.fov
            for kind, m in loaded.masks.items()
        }
    failed = 0
    for method, path in todo:
        try:
            result, cost = measure(
                lambda method=method: api.explain(
                    model, pre, method=method, classes=classes, **params[method]
                ),
                device,
            )
            record = score_explanation(model, pre, result, masks, settings)
            record.update(
                image=item.name,
                key=key[method],
                grade=loaded.grade,
                seconds=cost.seconds,
                peak_bytes=cost.peak_bytes,
                has_masks=masks is not None,
            )
            if index < sanity:
                steps = parameter_randomisation(
                    model, pre, method, result.grade, params=params[method]
                )
                record["sanity"] = [
                    [s.layer, s.spearman if np.isfinite(s.spearman) else None] for s in steps
                ]
        except RetinaviewError as exc:
            say(f"{item.name}: {method}: {exc}")
            failed += 1
            continue
        except Exception as exc:  # a method's own failure on one image must not stop the others
            say(f"{item.name}: {method} failed: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        _write_atomic(path, json.dumps(record))
        _write_csv(
            out / "images" / item.key / f"{method}.csv",
            record_rows(record),
            ["class", "metric", "lesion", "value"],
        )
    return failed


def collect(out: Path, items, methods, key) -> list[dict]:
    """The cached records of every (image, method) computed with the current settings."""
    records = []
    for item in items:
        for method in methods:
            try:
                rec = json.loads((out / "cache" / item.key / f"{method}.json").read_text())
            except (OSError, ValueError):
                continue
            if rec.get("key") == key[method]:
                records.append(rec)
    return records


def run(args: argparse.Namespace) -> int:
    import torch

    from retinaview.commands._progress import Progress
    from retinaview.core.api import load_model
    from retinaview.core.common.errors import DataError, RetinaviewError
    from retinaview.core.metrics.scores import Settings
    from retinaview.core.metrics.sources import parse_data
    from retinaview.core.metrics.summary import summarise
    from retinaview.core.models.registry import spec_of

    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise RetinaviewError("--methods is empty")
    params = parse_params(methods, args.param)
    fills = tuple(f.strip() for f in args.fills.split(",") if f.strip())
    if fills == ("none",):
        fills = ()
    for f in fills:
        if f not in ("gray", "blur"):
            raise RetinaviewError(f"--fills {args.fills}: {f!r} is not gray, blur or none")
    if args.steps < 1:
        raise RetinaviewError(f"--steps must be at least 1, not {args.steps}")
    rank, world, dist = _distributed()
    model = load_model(args.model, device=_device(args.device, world))
    spec = spec_of(model)
    source = parse_data(args.data, args.size or spec.input_size, args.labels, args.masks)
    if not source.items:
        raise DataError(f"{args.data}: the data set is empty")
    settings = Settings(
        steps=args.steps,
        fills=fills,
        blur_sigma=args.blur_sigma,
        road=not args.no_road,
        batch=args.batch,
    )
    classes = "predicted" if args.classes == "predicted" else None
    key = {
        m: {
            "version": CACHE_VERSION,
            "model": str(args.model),
            "source": spec.source,
            "method": m,
            "params": params[m],
            "classes": args.classes,
            "settings": settings.key(),
            "sanity": bool(args.sanity),
        }
        for m in methods
    }
    key = json.loads(json.dumps(key))  # the form the cache files hold (tuples become lists)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mine = list(enumerate(source.items))[rank::world]
    progress = Progress(
        len(mine), "compare", enabled=(not args.json and rank == 0 and sys.stderr.isatty())
    )

    def say(text: str) -> None:
        progress.message(f"retinaview: {text}")

    if rank == 0:
        for note in source.notes:
            say(note)
    device = next(model.parameters()).device
    failed = 0
    for done, (index, item) in enumerate(mine, 1):
        failed += compute_item(
            item,
            index,
            model,
            methods,
            params,
            classes,
            settings,
            key,
            out,
            args.sanity,
            device,
            say,
        )
        progress.update(done)
    progress.close()
    if dist is not None:
        dist.barrier()
    if rank != 0:
        dist.destroy_process_group()
        return 1 if failed else 0
    records = collect(out, source.items, methods, key)
    rows = [r for rec in records for r in record_rows(rec)]
    fields = ["image", "method", "class", "grade", "predicted", "metric", "lesion", "value"]
    _write_csv(out / "results.csv", rows, fields)
    summary = summarise(grouped(rows), resamples=args.bootstrap)
    _write_csv(out / "summary.csv", summary, ["group", "method", "metric", "n", "mean", "lo", "hi"])
    n_images = len({r["image"] for r in records})
    report = {
        "model": str(args.model),
        "source": spec.source,
        "data": args.data,
        "images": len(source.items),
        "images_done": n_images,
        "methods": methods,
        "classes": args.classes,
        "settings": settings.key(),
        "failed": failed,
        "summary": summary,
    }
    _write_atomic(out / "summary.json", json.dumps(report, indent=1))
    draw_figure(
        summary, methods, out / "summary.png", f"{args.data}: {n_images} images, {spec.arch}"
    )
    if dist is not None:
        dist.destroy_process_group()
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.data}: {n_images} of {len(source.items)} images, model {spec.arch} ({spec.source})"
        )
        print(format_table(summary, methods))
        print(f"tables and figure in {out}")
    if failed and world > 1:
        say(f"{failed} results failed on this process (other processes report their own)")
    return 1 if failed else 0
