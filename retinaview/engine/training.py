"""A training run in the background: `TrainingJob` runs ``retinaview.train.trainer.train`` in its own QThread.

The GUI thread never imports torch: the worker imports the trainer inside its run method, so creating a
`TrainingJob` (or the training dialog) costs nothing until Start. Progress crosses threads as plain dicts
(`TrainEvent` fields); the run ends with exactly one of `TrainingJob.finished` (a `TrainResult` as a dict) or
`TrainingJob.failed` (one line), both delivered after the thread has ended, so a slot connected to them may
start the next run at once. `stop` asks the trainer to stop after the current step; it saves ``last.pt``
first, and the run ends with status "stopped".

DataLoader workers default to 0 here: a GUI process must not fork, and spawning loader processes from a
frozen app is fragile; synthetic images are generated in the training thread instead.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QThread, Signal, Slot

from retinaview.core.common.errors import RetinaviewError

log = logging.getLogger(__name__)


class _TrainWorker(QObject):
    """Lives in the job's thread; runs one training and keeps its outcome for `TrainingJob`."""

    progress = Signal(object)

    def __init__(self, config: dict[str, Any], stop: threading.Event) -> None:
        super().__init__()
        self._config = config
        self._stop = stop
        self.outcome: tuple[str, Any] = ("failed", "training did not run")

    @Slot()
    def run(self) -> None:
        try:
            self.outcome = ("finished", self._train())
        except RetinaviewError as exc:
            self.outcome = ("failed", _one_line(str(exc)))
        except Exception as exc:  # anything else must still end the run with a message, not a crash
            log.exception("training failed")
            self.outcome = ("failed", _one_line(f"training failed: {type(exc).__name__}: {exc}"))
        finally:
            self.thread().quit()

    def _train(self) -> dict[str, Any]:
        # Imported here, in the worker thread: torch loads only once the user presses Start.
        from retinaview.train.trainer import TrainConfig, train

        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(self._config) - fields)
        if unknown:
            raise RetinaviewError(f"unknown training option(s): {', '.join(unknown)}")
        config = TrainConfig(**self._config)
        result = train(config, self._on_event, self._stop)
        return dataclasses.asdict(result)

    def _on_event(self, event: Any) -> None:
        self.progress.emit(dataclasses.asdict(event))


class TrainingJob(QObject):
    """One training run at a time, in a thread of its own.

    Signals
    -------
    progress(dict)
        A `TrainEvent` as a dict: kind ("step", "epoch" or "done"), epoch (0-based), epochs, step,
        total_steps, global_step, loss, qwk, val_qwk, images_per_s, eta_s (seconds), message, metrics.
    finished(dict)
        The `TrainResult` as a dict: status ("done", "stopped", ...), best_path, last_path, best_qwk,
        epochs_done, global_step, out, history, message.
    failed(str)
        One line saying why the run could not start or went wrong.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    _running: ClassVar[set[QThread]] = set()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._stop = threading.Event()
        self._thread: QThread | None = None
        self._worker: _TrainWorker | None = None

    def start(self, config: dict[str, Any]) -> None:
        """Start training with ``config`` (`TrainConfig` fields by name); ``workers`` defaults to 0."""
        if self.is_running():
            raise RuntimeError("a training run is already in progress")
        self.wait()
        config = dict(config)
        config.setdefault("workers", 0)
        self._stop.clear()
        thread = QThread()
        thread.setObjectName("retinaview-training")
        worker = _TrainWorker(config, self._stop)
        worker.moveToThread(thread)
        worker.progress.connect(self.progress)
        thread.started.connect(worker.run)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        TrainingJob._running.add(thread)
        thread.start()

    def stop(self) -> None:
        """Ask the run to stop after the current step (it saves ``last.pt``); returns at once."""
        self._stop.set()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Block until the thread has ended (True) or ``timeout_ms`` passed (False)."""
        if self._thread is None:
            return True
        done = self._thread.wait() if timeout_ms is None else self._thread.wait(timeout_ms)
        if done:
            TrainingJob._running.discard(self._thread)
        return bool(done)

    def shutdown(self) -> None:
        """Stop and wait: for closing the app while a run is in progress."""
        self.stop()
        self.wait()
        self._release()

    @classmethod
    def running_threads(cls) -> int:
        """Training threads started and still running, in this process (the tests' leak check)."""
        return sum(t.isRunning() for t in cls._running)

    @Slot()
    def _on_thread_finished(self) -> None:
        worker = self._worker
        if worker is None:
            return
        self.wait()
        kind, payload = worker.outcome
        self._release()
        if kind == "finished":
            self.finished.emit(payload)
        else:
            self.failed.emit(payload)

    def _release(self) -> None:
        if self._thread is not None:
            TrainingJob._running.discard(self._thread)
            self._thread.deleteLater()
        if self._worker is not None:
            self._worker.deleteLater()
        self._thread = self._worker = None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line or "training failed"
