"""Training loop: learning, exact resume (epoch end and mid-epoch), stop/time limit, DDP on 2 CPU processes."""

from __future__ import annotations

import json
import os
import socket
import threading

import numpy as np
import pytest
import torch
from torch import nn

from retinaview.core import synthetic
from retinaview.core.checkpoint import read_checkpoint
from retinaview.core.common.errors import DataError
from retinaview.core.models.registry import DR_CLASSES, ModelSpec
from retinaview.train.trainer import TrainConfig, train
from tests.helpers_train import fake_generate

SIZE = 64
REAL_GENERATE = synthetic.generate


@pytest.fixture(autouse=True)
def fast_synth(monkeypatch):
    monkeypatch.setattr(synthetic, "generate", fake_generate)


def tiny_model(seed: int = 0) -> tuple[nn.Module, ModelSpec]:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    spec = ModelSpec(
        arch="tiny-test",
        input_size=SIZE,
        class_names=DR_CLASSES,
        preprocessing="none",
        mean=(0.45, 0.25, 0.12),
        std=(0.3, 0.18, 0.1),
        explained_layers=(),
        classifier="8",
    )
    return model, spec


def config(out, **kw) -> TrainConfig:
    base = dict(
        out=str(out),
        data="synth:24:3",
        val="synth:12:4",
        epochs=2,
        batch=6,
        workers=0,
        threads=1,
        loss="kappa+ce",
        balance="equal",
        save_every_minutes=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def run(cfg, **kw):
    model, spec = tiny_model()
    return train(cfg, model=model, spec=spec, **kw)


def weights(path):
    return read_checkpoint(path)["state_dict"]


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_run_writes_checkpoints_and_metrics(tmp_path):
    events = []
    result = run(config(tmp_path / "r", epochs=1), progress=events.append)
    assert result.status == "done" and result.epochs_done == 1
    rows = [
        json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 1 and rows[0]["epoch"] == 1
    for key in ("train_loss", "train_qwk", "val_qwk", "val_accuracy", "images_per_s", "lr"):
        assert key in rows[0]
    kinds = {e.kind for e in events}
    assert kinds == {"step", "epoch", "done"}
    payload = read_checkpoint(tmp_path / "r" / "last.pt")
    state = payload["train_state"]
    assert state["epoch"] == 1 and state["global_step"] == 4
    assert "data" in payload["provenance"] and (tmp_path / "r" / "best.pt").exists()


def test_resume_after_epoch_equals_uninterrupted(tmp_path):
    run(config(tmp_path / "a", epochs=2))
    run(config(tmp_path / "b", epochs=1))
    result = run(config(tmp_path / "b", epochs=2, resume=True))
    assert result.epochs_done == 2
    assert_same(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt"))
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_stop_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    run(config(tmp_path / "a", epochs=2))
    stop = threading.Event()

    def progress(ev):
        if ev.kind == "step" and ev.global_step == 5:
            stop.set()

    result = run(config(tmp_path / "b", epochs=2), progress=progress, stop=stop)
    assert result.status == "stopped"
    state = read_checkpoint(tmp_path / "b" / "last.pt")["train_state"]
    assert (state["epoch"], state["step_in_epoch"]) == (1, 1)
    run(config(tmp_path / "b", epochs=2, resume=True))
    assert_same(weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt"))


def test_existing_run_needs_resume(tmp_path):
    run(config(tmp_path / "r", epochs=1))
    with pytest.raises(DataError, match="--resume"):
        run(config(tmp_path / "r", epochs=1))


def test_time_limit_stops_and_saves(tmp_path):
    result = run(config(tmp_path / "r", epochs=50, max_minutes=1e-6))
    assert result.status == "time-limit"
    assert read_checkpoint(tmp_path / "r" / "last.pt")["train_state"]["global_step"] == 1


def test_training_reduces_loss(tmp_path):
    cfg = config(
        tmp_path / "r",
        data="synth:60:1",
        val="synth:6:2",
        epochs=4,
        batch=10,
        loss="ce",
        lr=1e-2,
        fresh=False,
        augment=False,
    )
    result = run(cfg)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]


def test_real_generator_one_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "generate", REAL_GENERATE)
    result = run(config(tmp_path / "r", data="synth:8:3", val="synth:4:4", batch=4, epochs=1))
    assert result.status == "done" and result.history[0]["val_qwk"] is not None


def test_train_on_labelled_folder_with_patient_split(tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = ["image,level"]
    for p in range(10):
        for eye in ("left", "right"):
            grade = int(rng.integers(0, 5))
            img = rng.integers(0, 30, (70, 90, 3), dtype=np.uint8)
            yy, xx = np.mgrid[:70, :90]
            img[((yy - 35) ** 2 + (xx - 45) ** 2) < 30**2] += np.uint8(100 + 25 * grade)
            Image.fromarray(img).save(folder / f"{p}_{eye}.png")
            lines.append(f"{p}_{eye},{grade}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    model, spec = tiny_model()
    cfg = config(
        tmp_path / "r",
        data=str(folder),
        val=None,
        val_fraction=0.2,
        epochs=1,
        batch=4,
        balance="none",
    )
    files = sorted(folder.iterdir())
    result = train(cfg, model=model, spec=replace(spec, preprocessing="paper"))
    assert result.status == "done"
    assert result.history[0]["val_qwk"] is not None
    cache = tmp_path / "cache" / "retinaview" / "preprocessed"
    assert len(list(cache.glob("*.npy"))) == 20  # 16 train + 4 val
    assert sorted(folder.iterdir()) == files  # nothing written into the image folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    synthetic.generate = fake_generate
    result = run(config(out, epochs=1, data="synth:24:3", val="synth:8:4", batch=4))
    assert result.status == "done"
    assert result.global_step == 3  # 24 images / 2 processes / batch 4


def test_ddp_two_cpu_processes(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "ddp")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    state = read_checkpoint(os.path.join(out, "last.pt"))["train_state"]
    assert state["global_step"] == 3 and state["epoch"] == 1
    assert "world_size" in read_checkpoint(os.path.join(out, "last.pt"))["provenance"]
