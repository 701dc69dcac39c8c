"""`TrainingJob`: a real (tiny) training run in its own thread reports progress, finishes, stops, fails."""

from __future__ import annotations

import pytest

from retinaview.engine.training import TrainingJob

TINY = {
    "arch": "resnet18",
    "image_size": 64,
    "data": "synth:6:0",
    "val": "synth:3:1",
    "epochs": 1,
    "batch": 3,
    "augment": False,
    "amp": False,
    "device": "cpu",
}


@pytest.fixture
def job(qtbot):
    job = TrainingJob()
    yield job
    job.shutdown()
    assert TrainingJob.running_threads() == 0


@pytest.mark.slow
def test_tiny_run_reports_progress_and_finishes(job, qtbot, tmp_path):
    events: list[dict] = []
    job.progress.connect(events.append)
    with qtbot.waitSignal(job.finished, timeout=120_000) as blocker:
        job.start({**TINY, "out": str(tmp_path / "run")})
    result = blocker.args[0]
    assert result["status"] == "done"
    assert result["best_path"] and (tmp_path / "run" / "best.pt").is_file()
    kinds = [e["kind"] for e in events]
    assert kinds.count("step") == 2 and kinds[-2:] == ["epoch", "done"]
    step = events[0]
    assert step["total_steps"] == 2 and step["epochs"] == 1 and isinstance(step["loss"], float)
    assert events[-2]["val_qwk"] is not None
    assert not job.is_running() and TrainingJob.running_threads() == 0


@pytest.mark.slow
def test_stop_ends_after_the_current_step(job, qtbot, tmp_path):
    job.progress.connect(lambda e: job.stop() if e["kind"] == "step" else None)
    with qtbot.waitSignal(job.finished, timeout=120_000) as blocker:
        job.start({**TINY, "out": str(tmp_path / "run"), "epochs": 3})
    result = blocker.args[0]
    assert result["status"] == "stopped"
    assert result["last_path"] and (tmp_path / "run" / "last.pt").is_file()


def test_bad_config_fails_with_one_line(job, qtbot, tmp_path):
    with qtbot.waitSignal(job.failed, timeout=60_000) as blocker:
        job.start({**TINY, "out": str(tmp_path / "run"), "data": str(tmp_path / "nowhere")})
    message = blocker.args[0]
    assert "nowhere" in message and "\n" not in message
    assert TrainingJob.running_threads() == 0


def test_unknown_option_fails(job, qtbot, tmp_path):
    with qtbot.waitSignal(job.failed, timeout=60_000) as blocker:
        job.start({"out": str(tmp_path / "run"), "colour": "blue"})
    assert blocker.args[0] == "unknown training option(s): colour"
