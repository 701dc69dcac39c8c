"""Training and evaluation of a vessel segmentation network (DRIU, Maninis et al. 2016) on synthetic
photographs and their vessel masks.

Every synthetic photograph comes with its vessel tree (`retinaview.core.synthetic.generate`). A training item
is the model's input (the photograph through the model's preprocessing chain, `vessels` by default: green
channel, denoised, inverted, illumination-equalised) and the vessel mask mapped the same way; training reads
random crops of it, flipped and turned by quarter turns. The loss is binary cross-entropy inside the field of
view, or the class-balanced cross-entropy of HED (Xie and Tu 2015; vessels are about a tenth of the pixels):
each class's pixels weighted by the other class's share. Adam. Validation and `evaluate_vessels` score the
whole image inside the field of view with `retinaview.core.common.vessel_metrics`.

Runs are resumable: ``last.pt`` holds the weights, the optimizer and the position in the run; ``best.pt`` the
best validation F1. The images of epoch e, item i are a pure function of (seed, e, i).
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retinaview.core.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from retinaview.core.common.errors import DataError
from retinaview.core.common.vessel_metrics import VesselScores, mean_scores, vessel_scores
from retinaview.core.models.inputs import normalise
from retinaview.core.models.registry import ModelSpec, build_model

SEED_STRIDE = 1_000_003
LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
LOSSES = ("balanced", "bce")


@dataclass(frozen=True)
class VesselItem:
    """One photograph as the model sees it: input (S, S, 3) uint8, vessel mask and field of view (S, S)."""

    image: np.ndarray
    vessels: np.ndarray
    fov: np.ndarray


def synthetic_item(seed: int, size: int, chain: str) -> VesselItem:
    """The synthetic photograph of ``seed`` and its vessel tree, through ``chain`` at ``size`` px."""
    from retinaview.core.preprocess import preprocess
    from retinaview.core.synthetic import generate

    smp = generate(seed, size=size)
    pre = preprocess(smp.image, chain=chain, size=size)
    image = np.clip(pre.image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    vessels = pre.geometry.to_model(smp.vessels, order=0) & pre.fov
    return VesselItem(image, vessels, pre.fov)


def parse_synth(text: str) -> tuple[int, int]:
    """``synth:N[:SEED]`` -> (N, SEED); one line naming the option otherwise."""
    parts = text.split(":")
    try:
        if parts[0] != "synth" or len(parts) not in (2, 3):
            raise ValueError
        n = int(parts[1])
        seed = int(parts[2]) if len(parts) == 3 else 0
        if n < 1:
            raise ValueError
    except ValueError:
        raise DataError(f"{text}: expected synth:N[:SEED] with N >= 1") from None
    return n, seed


@dataclass
class VesselTrainConfig:
    """A vessel training run; ``retinaview train --task vessels`` options map one to one."""

    out: str = "runs/vessels"
    arch: str = "driu"
    width: float = 0.25
    chain: str = "vessels"
    data: str = "synth:200:0"
    val: str = "synth:20:1000"
    size: int = 512  # model input side (whole image)
    crop: int = 128  # training crop side (multiple of 8)
    crops_per_image: int = 4
    batch: int = 8
    epochs: int = 10
    lr: float = 1e-3
    lr_steps: tuple[int, ...] = ()  # epochs after which the learning rate is multiplied by lr_gamma
    lr_gamma: float = 0.3
    loss: str = "balanced"
    seed: int = 0
    resume: bool = False
    threads: int | None = None
    device: str = "auto"
    max_minutes: float | None = None
    save_every_minutes: float = 10.0
    model_config: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """One line naming the option for every value out of range."""
        parse_synth(self.data)
        parse_synth(self.val)
        if self.loss not in LOSSES:
            raise DataError(f"--loss {self.loss}: expected one of {', '.join(LOSSES)}")
        if self.crop % 8 or self.crop < 16 or self.crop > self.size:
            raise DataError(f"--crop {self.crop}: expected a multiple of 8 from 16 to --size")
        if self.size % 8 or self.size < 16:
            raise DataError(f"--size {self.size}: expected a multiple of 8, at least 16")
        for name in ("batch", "epochs", "crops_per_image"):
            if getattr(self, name) < 1:
                raise DataError(f"--{name.replace('_', '-')} {getattr(self, name)}: expected >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise DataError(f"--lr {self.lr}: expected a positive number")
        if not (self.width > 0):
            raise DataError(f"--width {self.width}: expected a positive number")


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """HED's class-balanced cross-entropy inside ``mask``: vessel pixels weighted by the background's
    share and background pixels by the vessels' share, summed and divided by the pixels counted."""
    m = mask.to(logits.dtype)
    t = target.to(logits.dtype)
    n = m.sum().clamp_min(1.0)
    pos = (t * m).sum()
    beta = 1.0 - pos / n  # share of background pixels
    weight = m * (beta * t + (1.0 - beta) * (1.0 - t))
    loss = F.binary_cross_entropy_with_logits(logits, t, weight=weight, reduction="sum")
    return loss / n


def masked_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Plain binary cross-entropy, averaged over the pixels inside ``mask``."""
    m = mask.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(
        logits, target.to(logits.dtype), weight=m, reduction="sum"
    )
    return loss / m.sum().clamp_min(1.0)


def _crops(
    item: VesselItem, crop: int, count: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``count`` random crops centred inside the field of view, flipped and turned at random."""
    size = item.image.shape[0]
    ys, xs = np.nonzero(item.fov)
    for _ in range(count):
        if len(ys):
            k = int(rng.integers(len(ys)))
            cy, cx = int(ys[k]), int(xs[k])
        else:
            cy = cx = size // 2
        top = int(np.clip(cy - crop // 2, 0, size - crop))
        left = int(np.clip(cx - crop // 2, 0, size - crop))
        window = (slice(top, top + crop), slice(left, left + crop))
        parts = [item.image[window], item.vessels[window], item.fov[window]]
        turns = int(rng.integers(4))
        flip = bool(rng.integers(2))
        out = []
        for a in parts:
            a = np.rot90(a, turns, axes=(0, 1))
            if flip:
                a = a[:, ::-1]
            out.append(np.ascontiguousarray(a))
        yield out[0], out[1], out[2]


class _Run:
    def __init__(
        self, cfg: VesselTrainConfig, progress: Callable[[str], None] | None, stop
    ) -> None:
        from retinaview.core.device import resolve_device

        cfg.check()
        self.cfg = cfg
        self.progress = progress
        self.stop_event = stop
        self.out = Path(cfg.out)
        self.device = resolve_device(None if cfg.device == "auto" else cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        config = {
            "num_classes": 1,
            "class_names": ["vessel"],
            "width": cfg.width,
            "input_size": cfg.size,
            "preprocessing": cfg.chain,
            "task": "vessels",
            **cfg.model_config,
        }
        torch.manual_seed(cfg.seed)  # the initial weights are part of the run
        self.model, self.spec = build_model(cfg.arch, config)
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr
        )
        self.loss_fn = balanced_bce if cfg.loss == "balanced" else masked_bce
        self.n, self.seed = parse_synth(cfg.data)
        self.val_n, self.val_seed = parse_synth(cfg.val)
        self.epoch = 0
        self.index = 0  # next image of this epoch
        self.step = 0
        self.best_f1: float | None = None
        self.history: list[dict[str, Any]] = []
        self.signal_status: str | None = None
        self.val_items: list[VesselItem] | None = None

    # ------------------------------------------------------------ state

    def _state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "index": self.index,
            "step": self.step,
            "best_f1": self.best_f1,
            "history": self.history,
            "config": asdict(self.cfg),
        }

    def save(self, name: str, metrics: dict[str, Any] | None = None) -> Path:
        return save_checkpoint(
            self.out / name,
            self.model,
            self.spec,
            metrics=metrics or {},
            provenance={"data": self.cfg.data, "val": self.cfg.val, "task": "vessels"},
            train_state=self._state() if name == LAST else None,
        )

    def restore(self) -> None:
        path = self.out / LAST
        payload = read_checkpoint(path, map_location="cpu")
        state = payload.get("train_state")
        if not isinstance(state, dict) or not isinstance(state.get("optimizer"), dict):
            raise DataError(f"{path}: no training state to resume (optimizer missing)")
        model, _, _ = load_checkpoint(path)
        self.model.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state.get("epoch", 0))
        self.index = int(state.get("index", 0))
        self.step = int(state.get("step", 0))
        self.best_f1 = state.get("best_f1")
        self.history = list(state.get("history") or [])

    # ------------------------------------------------------------ loop

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def _stopping(self) -> str | None:
        if self.signal_status is not None:
            return self.signal_status
        if self.stop_event is not None and self.stop_event.is_set():
            return "stopped"
        if (
            self.cfg.max_minutes is not None
            and time.monotonic() - self.t0 > 60 * self.cfg.max_minutes
        ):
            return "time-limit"
        return None

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
        """Batches of crops for the rest of this epoch; yields (x, y, mask, next image index)."""
        cfg = self.cfg
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        ms: list[np.ndarray] = []
        i = self.index
        while i < self.n:
            item_seed = self.seed * SEED_STRIDE + self.epoch * self.n + i
            item = synthetic_item(item_seed, cfg.size, cfg.chain)
            rng = np.random.default_rng([item_seed, 0xD21])
            for x, y, m in _crops(item, cfg.crop, cfg.crops_per_image, rng):
                xs.append(x)
                ys.append(y)
                ms.append(m)
            i += 1
            if len(xs) >= cfg.batch or i == self.n:
                # the caller moves the run's position to i once the step is taken (resumable)
                yield (
                    torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2),
                    torch.from_numpy(np.stack(ys))[:, None],
                    torch.from_numpy(np.stack(ms))[:, None],
                    i,
                )
                xs, ys, ms = [], [], []

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.t0 = time.monotonic()
        last_save = self.t0
        if cfg.resume:
            self.restore()
        elif (self.out / LAST).exists():
            raise DataError(f"{self.out}: already holds a run (use --resume to continue it)")
        self.out.mkdir(parents=True, exist_ok=True)
        restore_signals = self._install_signals()
        status = "done"
        try:
            while self.epoch < cfg.epochs:
                lr = cfg.lr * cfg.lr_gamma ** sum(self.epoch >= e for e in cfg.lr_steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.model.train()
                t_epoch = time.monotonic()
                losses = []
                for x, y, m, next_index in self._batches():
                    x = normalise(x.to(self.device), self.spec)
                    logits = self.model(x)
                    loss = self.loss_fn(logits, y.to(self.device), m.to(self.device))
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    self.index = next_index
                    self.step += 1
                    losses.append(loss.item())
                    rate = self.index / max(time.monotonic() - t_epoch, 1e-9)
                    self._say(
                        f"epoch {self.epoch + 1}/{cfg.epochs} image {self.index}/{self.n} "
                        f"loss {np.mean(losses[-20:]):.4f} {rate:.2f} images/s"
                    )
                    why = self._stopping()
                    if why is not None:
                        raise _Stop(why)
                    if time.monotonic() - last_save > 60 * cfg.save_every_minutes:
                        self.save(LAST)
                        last_save = time.monotonic()
                scores = self.validate()
                row = {
                    "epoch": self.epoch + 1,
                    "loss": float(np.mean(losses)) if losses else float("nan"),
                    **{f"val_{k}": v for k, v in scores.items()},
                    "seconds": time.monotonic() - t_epoch,
                }
                self.history.append(row)
                with open(self.out / METRICS, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                self.epoch += 1
                self.index = 0
                self.spec.config["threshold"] = scores["threshold"]
                if self.best_f1 is None or scores["f1"] > self.best_f1:
                    self.best_f1 = float(scores["f1"])
                    self.save(BEST, metrics={"val": scores, "epoch": self.epoch})
                self.save(LAST)
                last_save = time.monotonic()
                self._say(
                    f"epoch {self.epoch}/{cfg.epochs} validation F1 {scores['f1']:.3f} "
                    f"mIoU {scores['miou']:.3f} AUC {scores['auc']:.3f}"
                )
        except _Stop as why:
            status = str(why)
            self.save(LAST)
        finally:
            restore_signals()
        return {
            "status": status,
            "epochs": self.epoch,
            "best_f1": self.best_f1,
            "out": str(self.out),
        }

    def validate(self) -> dict[str, float]:
        if self.val_items is None:
            self.val_items = [
                synthetic_item(self.val_seed * SEED_STRIDE + i, self.cfg.size, self.cfg.chain)
                for i in range(self.val_n)
            ]
        probs = [vessel_probability(self.model, self.spec, it.image) for it in self.val_items]
        threshold, scores = best_threshold(probs, self.val_items)
        return {**scores, "threshold": threshold}

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum, frame):
            self.signal_status = "terminated" if signum == signal.SIGTERM else "interrupted"

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, h in previous.items():
                signal.signal(sig, h)

        return restore


class _Stop(Exception):
    pass


def vessel_probability(model: nn.Module, spec: ModelSpec, image_uint8: np.ndarray) -> np.ndarray:
    """(S, S) vessel probability of one model input (S, S, 3) uint8, one forward pass."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1)[None].to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(normalise(x, spec))
    finally:
        model.train(was_training)
    return torch.sigmoid(logits.double())[0, 0].cpu().numpy()


def model_threshold(spec: ModelSpec) -> float:
    """The probability above which the model calls a pixel vessel: chosen on the validation set during
    training (a class-balanced loss moves the best threshold well above 0.5), else 0.5."""
    return float(spec.config.get("threshold", 0.5))


def score_items(
    model: nn.Module, spec: ModelSpec, items: list[VesselItem], threshold: float | None = None
) -> list[VesselScores]:
    """Figures of each item inside its field of view, at the model's threshold unless one is given."""
    t = model_threshold(spec) if threshold is None else threshold
    return [
        vessel_scores(vessel_probability(model, spec, it.image), it.vessels, it.fov, t)
        for it in items
    ]


THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))


def best_threshold(
    probs: list[np.ndarray], items: list[VesselItem]
) -> tuple[float, dict[str, float]]:
    """The threshold of `THRESHOLDS` with the best mean F1 over the items, and the mean figures there."""
    best: tuple[float, dict[str, float]] | None = None
    for t in THRESHOLDS:
        m = mean_scores(
            [vessel_scores(p, it.vessels, it.fov, t) for p, it in zip(probs, items, strict=True)]
        )
        if best is None or m["f1"] > best[1]["f1"]:
            best = (t, m)
    if best is None:
        raise DataError("no validation images to choose a threshold on")
    return best


def train_vessels(
    cfg: VesselTrainConfig,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Train (or resume) a vessel network as ``cfg`` says; returns status, epochs, best F1, run folder."""
    return _Run(cfg, progress, stop).run()


def evaluate_vessels(
    model: nn.Module,
    spec: ModelSpec,
    source: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Mean figures over the synthetic images of ``source`` (``synth:N:SEED``), inside the field of view."""
    n, seed = parse_synth(source)
    rows = []
    for i in range(n):
        item = synthetic_item(seed * SEED_STRIDE + i, spec.input_size, spec.preprocessing)
        prob = vessel_probability(model, spec, item.image)
        rows.append(vessel_scores(prob, item.vessels, item.fov, model_threshold(spec)))
        if progress is not None:
            progress(i + 1, n)
    return mean_scores(rows)


def reweight_experiment(
    model: nn.Module,
    spec: ModelSpec,
    source: str,
    factors: list[float],
    branches: list[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, float]]:
    """The side-output re-weighting experiment: multiply one branch's side output by each factor before the
    fuse layer and re-measure mean mIoU and F1 inside the field of view over ``source``.

    Returns one row per (branch, factor): ``branch`` (0-3), ``label`` (conv1_2, upsample2, upsample4,
    upsample8), ``factor``, ``miou``, ``f1``, ``auc``. The model's branch weights are restored afterwards.
    """
    from retinaview.core.models.driu import BRANCH_LABELS

    weights = getattr(model, "branch_weights", None)
    if weights is None:
        raise DataError(f"{spec.source or spec.arch}: not a DRIU network (no side-output branches)")
    n, seed = parse_synth(source)
    items = [
        synthetic_item(seed * SEED_STRIDE + i, spec.input_size, spec.preprocessing)
        for i in range(n)
    ]
    branches = list(range(len(weights))) if branches is None else branches
    saved = weights.clone()
    rows: list[dict[str, float]] = []
    total = len(branches) * len(factors)
    try:
        for b in branches:
            for f in factors:
                weights.copy_(saved)
                weights[b] = float(f)
                m = mean_scores(score_items(model, spec, items))
                rows.append(
                    {
                        "branch": b,
                        "label": BRANCH_LABELS[b],
                        "factor": float(f),
                        "miou": m["miou"],
                        "f1": m["f1"],
                        "auc": m["auc"],
                    }
                )
                if progress is not None:
                    progress(len(rows), total)
    finally:
        weights.copy_(saved)
    return rows
