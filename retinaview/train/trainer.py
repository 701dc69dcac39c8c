"""The training loop and its Python API: ``train(config, progress, stop) -> TrainResult``.

One function serves the CLI (``retinaview train``), the GUI (called from a worker thread with a progress
callback and a stop event) and ``torchrun`` (DistributedDataParallel when WORLD_SIZE > 1: gloo on CPU,
nccl on GPU; only rank 0 writes files).

Run folder:
  last.pt        weights + train_state (optimizer, epoch, position in the epoch, RNG, best QWK, history);
                 written at every epoch end, every ``save_every_minutes`` inside an epoch, and on stop
  best.pt        the weights with the best validation QWK so far (metrics = validation metrics + epoch)
  metrics.jsonl  one JSON object per epoch

Everything random about the data (which synthetic image, balanced grade, augmentation, order) is a function
of (seed, epoch, index), so ``resume`` continues exactly where a run stopped: a run stopped and resumed
gives the same weights as one that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from retinaview.core.checkpoint import read_checkpoint, save_checkpoint
from retinaview.core.common.errors import DataError
from retinaview.core.device import resolve_device
from retinaview.core.models.inputs import normalise
from retinaview.core.models.registry import ModelSpec, build_model
from retinaview.core.validate import check_model_fit, check_train_state
from retinaview.train import data
from retinaview.train.augment import AugmentConfig
from retinaview.train.losses import build_loss
from retinaview.train.metrics import accuracy_from_confusion, kappa_from_confusion
from retinaview.train.options import check as check_options

LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Everything a training run depends on; ``retinaview train`` options map one to one."""

    out: str = "runs/train"
    arch: str = "paper17"
    model_config: dict[str, Any] = field(default_factory=dict)
    data: str = "synth:2000:0"
    val: str | None = None  # None: synth -> synth:M:seed+1000; folder -> split by patient
    labels: str | None = None
    val_labels: str | None = None
    val_fraction: float = 0.1
    epochs: int = 10
    batch: int = 15
    val_batch: int | None = None
    lr: float = 3e-4
    lr_steps: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    loss: str = "kappa"
    balance: str = "none"
    fresh: bool = True
    augment: bool = True
    image_size: int | None = None  # synthetic image size; default the model's input size
    seed: int = 0
    resume: bool = False
    threads: int | None = None
    workers: int | None = None
    device: str | None = None
    amp: bool = True
    channels_last: bool = True
    max_minutes: float | None = None
    save_every_minutes: float = 10.0
    cache_val: bool = True
    cache_train: bool = True  # synthetic training images kept on disk when not fresh
    command: str = ""


@dataclass
class TrainEvent:
    """A progress report: kind "step" (every step), "epoch" (after validation) or "done"."""

    kind: str
    epoch: int = 0  # 0-based epoch index
    epochs: int = 0
    step: int = 0  # steps done in this epoch
    total_steps: int = 0  # steps per epoch
    global_step: int = 0
    loss: float | None = None
    qwk: float | None = None
    val_qwk: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    message: str = ""
    metrics: dict[str, Any] | None = None


@dataclass
class TrainResult:
    """How a run ended: its status, where it stands, the best validation QWK and the files it wrote."""

    status: str  # done | stopped | time-limit | interrupted | terminated
    epochs_done: int
    global_step: int
    best_qwk: float | None
    out: str
    last_path: str | None
    best_path: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


class _Stop(Exception):
    pass


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed() -> _Dist:
    if dist.is_available() and dist.is_initialized():
        return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    return _Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", 0)), owned=True)


def train(
    config: TrainConfig,
    progress: Callable[[TrainEvent], None] | None = None,
    stop: threading.Event | None = None,
    *,
    model: nn.Module | None = None,
    spec: ModelSpec | None = None,
) -> TrainResult:
    """Train (or resume) a grader as ``config`` says.

    Parameters
    ----------
    config : TrainConfig
        The run.
    progress : callable, optional
        Gets a `TrainEvent` after every step and epoch, and at the end (rank 0 only).
    stop : threading.Event, optional
        Set it to end the run cleanly after the current step; ``last.pt`` is saved.
    model : torch.nn.Module, optional
        Replaces building ``config.arch`` (tests use tiny models); needs ``spec``.
    spec : ModelSpec, optional
        The spec of ``model``.

    Returns
    -------
    TrainResult

    Raises
    ------
    DataError
        Bad sources, or a run folder that already holds a run without ``resume``: every option is
        checked first by `retinaview.train.options.check`, as the command line and the training dialog do.
    """
    check_options(config, check_arch=model is None)
    info = _init_distributed()
    try:
        return _Trainer(config, progress, stop, model, spec, info).run()
    finally:
        if info.owned and dist.is_initialized():
            dist.destroy_process_group()


class _Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        progress: Callable[[TrainEvent], None] | None,
        stop: threading.Event | None,
        model: nn.Module | None,
        spec: ModelSpec | None,
        info: _Dist,
    ) -> None:
        self.cfg = cfg
        self.progress = progress if info.main else None
        self.stop_event = stop
        self.info = info
        self.out = Path(cfg.out)
        self.signal_status: str | None = None
        self.hard_stop = False
        self.t_start = time.monotonic()
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        if info.active and torch.cuda.is_available():
            self.device = torch.device("cuda", info.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if model is None:
            model, spec = build_model(cfg.arch, cfg.model_config)
        elif spec is None:
            raise ValueError("a model passed to train() needs its spec")
        self.spec: ModelSpec = spec
        self.size = int(cfg.image_size or spec.input_size)
        self.model = model.to(self.device)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.loss_fn = build_loss(cfg.loss)
        self.amp_dtype = None
        if cfg.amp and self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.net: nn.Module = self.model
        if info.active:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        # state
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.best_qwk: float | None = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, Any]] = []
        self.epoch_stats = _new_stats(self.spec.num_classes)
        self._build_data()

    # ------------------------------------------------------------------ data

    def _build_data(self) -> None:
        cfg = self.cfg
        proportions = data.parse_balance(cfg.balance)
        aug = AugmentConfig() if cfg.augment else None
        src = data.parse_source(cfg.data, cfg.labels)
        val_src = data.parse_source(cfg.val, cfg.val_labels) if cfg.val else None
        train_records = val_records = None
        if isinstance(src, data.FolderSource):
            records = data.load_folder(src.folder, src.labels)
            if val_src is None:
                train_records, val_records = data.split_by_patient(
                    records, cfg.val_fraction, cfg.seed
                )
                if not train_records:
                    raise DataError(f"{src.folder}: no training images left after the split")
            else:
                train_records = records
        elif val_src is None:
            val_src = data.SynthSource(min(500, max(50, src.n // 10)), src.seed + 1000)
        chain = self.spec.preprocessing
        self.train_ds = data.build_dataset(
            src,
            size=self.size,
            chain=chain,
            proportions=proportions if isinstance(src, data.SynthSource) else None,
            fresh=cfg.fresh,
            augment=aug,
            aug_seed=cfg.seed,
            cache_dir=self.out / "cache" / "train"
            if isinstance(src, data.SynthSource) and cfg.cache_train and not cfg.fresh
            else None,
            records=train_records,
        )
        weights = None
        if isinstance(self.train_ds, data.FolderDataset) and proportions is not None:
            weights = data.balance_weights(self.train_ds.grades, proportions)
        if len(self.train_ds) < cfg.batch * self.info.world:
            raise DataError(
                f"{cfg.data}: {len(self.train_ds)} training images, fewer than one batch of {cfg.batch}"
                + (f" per process ({self.info.world} processes)" if self.info.active else "")
            )
        self.train_sampler = data.EpochBatchSampler(
            len(self.train_ds),
            cfg.batch,
            seed=cfg.seed,
            weights=weights,
            rank=self.info.rank,
            world=self.info.world,
        )
        self.val_ds = None
        if val_src is not None or val_records:
            cache = self.out / "cache" / "val" if cfg.cache_val else None
            self.val_ds = data.build_dataset(
                val_src if val_src is not None else src,
                size=self.size,
                chain=chain,
                cache_dir=cache if isinstance(val_src, data.SynthSource) else None,
                records=val_records,
            )
        self.val_sampler = None
        if self.val_ds is not None and len(self.val_ds):
            self.val_sampler = data.EpochBatchSampler(
                len(self.val_ds),
                cfg.val_batch or cfg.batch,
                shuffle=False,
                drop_last=False,
                rank=self.info.rank,
                world=self.info.world,
            )
        workers = data.default_workers() if cfg.workers is None else int(cfg.workers)
        self.workers = workers
        self.train_loader = data.make_loader(
            self.train_ds, self.train_sampler, workers, self.device
        )
        self.val_loader = (
            data.make_loader(self.val_ds, self.val_sampler, workers, self.device)
            if self.val_sampler is not None
            else None
        )
        self.data_description = {
            "train": self.train_ds.describe(),
            "val": self.val_ds.describe() if self.val_ds is not None else None,
            "balance": cfg.balance,
            "augment": cfg.augment,
        }

    # ------------------------------------------------------------------ state

    def _train_state(self) -> dict[str, Any]:
        state = {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_qwk": self.best_qwk,
            "best_epoch": self.best_epoch,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "sampler": {"seed": self.cfg.seed, "epoch": self.epoch, "start": self.step_in_epoch},
            "epoch_stats": {
                "confusion": self.epoch_stats["confusion"].tolist(),
                "loss_sum": self.epoch_stats["loss_sum"],
                "steps": self.epoch_stats["steps"],
                "images": self.epoch_stats["images"],
                "seconds": self.epoch_stats["seconds"],
                "data_wait": self.epoch_stats["data_wait"],
                "loader_start": self.epoch_stats["loader_start"],
            },
            "history": list(self.history),
            "config": _plain(asdict(self.cfg)),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if torch.cuda.is_available():
            state["cuda_rng"] = [s for s in torch.cuda.get_rng_state_all()]
        return state

    def _load_state(self, path: Path) -> None:
        payload = read_checkpoint(path, map_location="cpu")
        if payload.get("arch") != self.spec.arch:
            raise DataError(
                f"{path}: holds a {payload.get('arch')} run, not {self.spec.arch}; use another --out"
            )
        state = payload.get("train_state")
        check_train_state(state, str(path), self.spec.num_classes)
        check_model_fit(self.model, payload["state_dict"], str(path), self.spec.arch)
        try:
            self.model.load_state_dict(payload["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scaler is not None and "scaler" in state:
                self.scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["torch_rng"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            first = " ".join(str(exc).split())[:120]
            raise DataError(f"{path}: training state does not fit this run ({first})") from None
        if torch.cuda.is_available() and state.get("cuda_rng"):
            states = state["cuda_rng"][: torch.cuda.device_count()]
            torch.cuda.set_rng_state_all(states)
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.best_qwk = state.get("best_qwk")
        self.best_epoch = state.get("best_epoch")
        self.history = list(state.get("history") or [])
        es = state.get("epoch_stats") or {}
        self.epoch_stats = _new_stats(self.spec.num_classes)
        if es:
            self.epoch_stats.update(
                confusion=np.asarray(es["confusion"], dtype=np.int64),
                loss_sum=float(es["loss_sum"]),
                steps=int(es["steps"]),
                images=int(es["images"]),
                seconds=float(es["seconds"]),
                data_wait=float(es["data_wait"]),
                loader_start=float(es.get("loader_start", 0.0)),
            )

    def _save(self, path_name: str = LAST, metrics: dict | None = None) -> Path | None:
        if not self.info.main:
            return None
        return save_checkpoint(
            self.out / path_name,
            self.model,
            self.spec,
            metrics=_plain(metrics or (self.history[-1] if self.history else {})),
            provenance=_plain(self._provenance()),
            train_state=self._train_state() if path_name == LAST else None,
        )

    def _provenance(self) -> dict[str, Any]:
        return {
            "command": self.cfg.command or " ".join(sys.argv),
            "data": self.data_description,
            "seed": self.cfg.seed,
            "epochs": self.cfg.epochs,
            "batch": self.cfg.batch,
            "lr": self.cfg.lr,
            "lr_steps": list(self.cfg.lr_steps),
            "loss": self.cfg.loss,
            "world_size": self.info.world,
            "torch": str(torch.__version__),
        }

    def _write_metrics_file(self) -> None:
        if not self.info.main:
            return
        path = self.out / METRICS
        tmp = path.with_name(f".{METRICS}.tmp")
        tmp.write_text("".join(json.dumps(h) + "\n" for h in self.history))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ loop

    def run(self) -> TrainResult:
        cfg = self.cfg
        last = self.out / LAST
        if cfg.resume and last.exists():
            self._load_state(last)
            self._emit(
                TrainEvent(
                    "step",
                    self.epoch,
                    cfg.epochs,
                    self.step_in_epoch,
                    len(self.train_sampler),
                    self.global_step,
                    message=f"resuming {last} at epoch {self.epoch + 1}, step {self.step_in_epoch}",
                )
            )
        elif cfg.resume:
            msg = f"{last}: not there yet; starting a new run"
            self._emit(TrainEvent("step", epochs=cfg.epochs, message=msg))
        if self.info.main:
            self.out.mkdir(parents=True, exist_ok=True)
            self._write_metrics_file()
        restore = self._install_signals()
        status = "done"
        try:
            while self.epoch < cfg.epochs:
                self._train_epoch()
                self._end_epoch()
        except _Stop as why:
            status = str(why)
            self._save(LAST)
        except KeyboardInterrupt:
            # A second Ctrl-C may land inside an optimizer step: keep the last consistent checkpoint.
            status = "interrupted"
            self.hard_stop = True
        finally:
            restore()
            # Shut persistent loader processes down now, not whenever the loaders are collected.
            self.train_loader = self.val_loader = None
        message = {
            "done": f"finished {self.epoch} epoch{'' if self.epoch == 1 else 's'}",
            "stopped": "stopped",
            "time-limit": f"time limit of {cfg.max_minutes} minutes reached",
            "interrupted": "interrupted",
            "terminated": "terminated",
        }[status]
        if self.hard_stop:
            message += f" at once; {last} holds the last checkpoint written before"
        elif status != "done":
            message += f"; saved {last} at epoch {self.epoch + 1} step {self.step_in_epoch}"
            message += f" (continue with --resume --out {self.out})"
        best = self.out / BEST
        self._emit(
            TrainEvent(
                "done",
                self.epoch,
                cfg.epochs,
                global_step=self.global_step,
                val_qwk=self.best_qwk,
                message=message,
            )
        )
        return TrainResult(
            status,
            self.epoch,
            self.global_step,
            self.best_qwk,
            str(self.out),
            str(last) if last.exists() else None,
            str(best) if best.exists() else None,
            list(self.history),
            message,
        )

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def on_term(signum, frame):
            self.signal_status = "terminated"

        def on_int(signum, frame):
            if self.signal_status is not None:
                raise KeyboardInterrupt
            self.signal_status = "interrupted"
            if self.info.main:
                print(
                    "\nretinaview: stopping after this step (Ctrl-C again to quit at once)",
                    file=sys.stderr,
                    flush=True,
                )

        for sig, handler in ((signal.SIGTERM, on_term), (signal.SIGINT, on_int)):
            try:
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

        def restore() -> None:
            for sig, h in previous.items():
                signal.signal(sig, h)

        return restore

    def _should_stop(self) -> str | None:
        local = 0
        if self.signal_status == "terminated":
            local = 3
        elif self.signal_status == "interrupted":
            local = 2
        elif self.stop_event is not None and self.stop_event.is_set():
            local = 1
        elif self.cfg.max_minutes is not None and (
            time.monotonic() - self.t_start > self.cfg.max_minutes * 60
        ):
            local = 4
        if self.info.active:
            t = torch.tensor([local], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            local = int(t.item())
        return {0: None, 1: "stopped", 2: "interrupted", 3: "terminated", 4: "time-limit"}[local]

    def _lr(self, epoch: int) -> float:
        drops = sum(1 for s in self.cfg.lr_steps if epoch >= s)
        return self.cfg.lr * self.cfg.lr_gamma**drops

    def _to_input(self, batch: torch.Tensor) -> torch.Tensor:
        x = normalise(batch.to(self.device, non_blocking=True), self.spec)
        return x.contiguous(memory_format=self.memory_format)

    def _train_epoch(self) -> None:
        cfg = self.cfg
        total = len(self.train_sampler)
        if self.step_in_epoch >= total:
            return  # trained, but stopped before validation
        lr = self._lr(self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.train_sampler.set_epoch(self.epoch, self.step_in_epoch)
        self.net.train()
        stats = self.epoch_stats
        last_save = time.monotonic()
        t_prev = time.monotonic()
        run_t0, run_images, run_steps = time.monotonic(), 0, 0
        it = data.guarded(self.train_loader)
        while True:
            t0 = time.monotonic()
            try:
                xb, yb = next(it)
            except StopIteration:
                break
            if run_steps or self.workers == 0:
                stats["data_wait"] += time.monotonic() - t0
            else:  # the first batch of a run also waits for the loader processes to start
                stats["loader_start"] += time.monotonic() - t0
            x = self._to_input(xb)
            y = yb.to(self.device, non_blocking=True)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(
                self.device.type,
                dtype=self.amp_dtype or torch.float32,
                enabled=self.amp_dtype is not None,
            ):
                logits = self.net(x)
                loss = self.loss_fn(logits.float(), y)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            pred = logits.detach().argmax(1).cpu().numpy()
            stats["confusion"] += _confusion(yb.numpy(), pred, self.spec.num_classes)
            stats["loss_sum"] += float(loss.detach())
            stats["steps"] += 1
            stats["images"] += int(y.shape[0])
            self.step_in_epoch += 1
            self.global_step += 1
            now = time.monotonic()
            stats["seconds"] += now - t_prev
            t_prev = now
            run_images += int(y.shape[0])
            run_steps += 1
            ips = run_images * self.info.world / max(now - run_t0, 1e-9)
            per_step = (now - run_t0) / run_steps
            left = (total - self.step_in_epoch) + (cfg.epochs - self.epoch - 1) * total
            self._emit(
                TrainEvent(
                    "step",
                    self.epoch,
                    cfg.epochs,
                    self.step_in_epoch,
                    total,
                    self.global_step,
                    loss=stats["loss_sum"] / stats["steps"],
                    qwk=kappa_from_confusion(stats["confusion"]),
                    images_per_s=ips,
                    eta_s=left * per_step,
                )
            )
            why = self._should_stop()
            if why is not None:
                raise _Stop(why)
            if (
                cfg.save_every_minutes
                and now - last_save > cfg.save_every_minutes * 60
                and self.step_in_epoch < total
            ):
                self._save(LAST)
                last_save = now

    def _end_epoch(self) -> None:
        cfg = self.cfg
        stats = self.epoch_stats
        confusion = stats["confusion"].copy()
        sums = np.array([stats["loss_sum"], stats["steps"], stats["images"]], dtype=np.float64)
        if self.info.active:
            confusion = _all_reduce_np(confusion, self.device)
            sums = _all_reduce_np(sums, self.device)
        val = self._validate()
        secs = stats["seconds"]
        row = {
            "epoch": self.epoch + 1,
            "step": self.global_step,
            "train_loss": float(sums[0] / max(sums[1], 1)),
            "train_qwk": kappa_from_confusion(confusion),
            "train_accuracy": accuracy_from_confusion(confusion),
            "val_qwk": val.get("qwk"),
            "val_accuracy": val.get("accuracy"),
            "val_loss": val.get("loss"),
            "images_per_s": float(sums[2] / secs) if secs > 0 else None,
            "seconds": secs,
            "data_wait_s": stats["data_wait"],
            "loader_start_s": stats["loader_start"],
            "val_seconds": val.get("seconds"),
            "lr": self._lr(self.epoch),
        }
        self.history.append(row)
        improved = val.get("qwk") is not None and (
            self.best_qwk is None or val["qwk"] > self.best_qwk
        )
        if improved:
            self.best_qwk = float(val["qwk"])
            self.best_epoch = self.epoch + 1
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_stats = _new_stats(self.spec.num_classes)
        if improved:
            metrics = {**{f"val_{k}": v for k, v in val.items() if k != "seconds"}}
            metrics.update(epoch=self.best_epoch, val_confusion=val.get("confusion"))
            self._save(BEST, metrics=metrics)
        self._save(LAST)
        self._write_metrics_file()
        self._emit(
            TrainEvent(
                "epoch",
                self.epoch - 1,
                cfg.epochs,
                len(self.train_sampler),
                len(self.train_sampler),
                self.global_step,
                loss=row["train_loss"],
                qwk=row["train_qwk"],
                val_qwk=row["val_qwk"],
                images_per_s=row["images_per_s"],
                metrics=row,
                message=_epoch_line(row, cfg.epochs, improved),
            )
        )

    def _validate(self) -> dict[str, Any]:
        if self.val_loader is None:
            return {}
        t0 = time.monotonic()
        k = self.spec.num_classes
        confusion = np.zeros((k, k), dtype=np.int64)
        loss_sum = np.zeros(2, dtype=np.float64)
        model = self.model
        model.eval()
        self.val_sampler.set_epoch(0)
        with torch.inference_mode():
            for xb, yb in data.guarded(self.val_loader):
                x = self._to_input(xb)
                with torch.autocast(
                    self.device.type,
                    dtype=self.amp_dtype or torch.float32,
                    enabled=self.amp_dtype is not None,
                ):
                    logits = model(x).float()
                y = yb.to(self.device)
                loss_sum += (float(self.loss_fn(logits, y)), 1)
                confusion += _confusion(yb.numpy(), logits.argmax(1).cpu().numpy(), k)
                if self.signal_status is not None or (
                    self.stop_event is not None and self.stop_event.is_set()
                ):
                    break
        model.train()
        if self.info.active:
            confusion = _all_reduce_np(confusion, self.device)
            loss_sum = _all_reduce_np(loss_sum, self.device)
        why = self._should_stop()
        if why is not None:
            # Validation was cut short: record the epoch as trained but not validated.
            self.step_in_epoch = len(self.train_sampler)
            raise _Stop(why)
        return {
            "qwk": kappa_from_confusion(confusion),
            "accuracy": accuracy_from_confusion(confusion),
            "loss": float(loss_sum[0] / max(loss_sum[1], 1)),
            "confusion": confusion.tolist(),
            "n": int(confusion.sum()),
            "seconds": time.monotonic() - t0,
        }

    def _emit(self, event: TrainEvent) -> None:
        if self.progress is not None:
            self.progress(event)


def _new_stats(k: int = 5) -> dict[str, Any]:
    return {
        "confusion": np.zeros((k, k), dtype=np.int64),
        "loss_sum": 0.0,
        "steps": 0,
        "images": 0,
        "seconds": 0.0,
        "data_wait": 0.0,
        "loader_start": 0.0,
    }


def _confusion(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(t.astype(np.int64) * k + p, minlength=k * k).reshape(k, k)


def _all_reduce_np(a: np.ndarray, device: torch.device) -> np.ndarray:
    t = torch.as_tensor(a, dtype=torch.float64, device=device)
    if device.type == "cuda":
        t = t.float()  # nccl reduces float32 fine; counts stay exact below 2^24
    dist.all_reduce(t)
    return t.cpu().numpy().astype(a.dtype)


def _plain(obj: Any) -> Any:
    """Config values as weights_only-loadable builtins."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _epoch_line(row: dict[str, Any], epochs: int, improved: bool) -> str:
    def f(v, fmt=".3f"):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    return (
        f"epoch {row['epoch']}/{epochs}: loss {f(row['train_loss'])} train QWK {f(row['train_qwk'])} "
        f"val QWK {f(row['val_qwk'])} val acc {f(row['val_accuracy'])} "
        f"{f(row['images_per_s'], '.2f')} img/s {f(row['seconds'], '.0f')} s"
        + (" (best)" if improved else "")
    )
