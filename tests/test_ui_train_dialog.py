"""The training dialog with a scripted job: plot and progress follow the events, stop, validation, open model."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QObject, QTimer, Signal

from retinaview.ui.train_dialog import TrainDialog


class FakeJob(QObject):
    """A training job without torch: the test emits the events a real run would."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.configs: list[dict[str, Any]] = []
        self.running = False
        self.stop_requested = False
        self.shut_down = False
        self.best_path: str | None = None

    def start(self, config: dict[str, Any]) -> None:
        self.configs.append(config)
        self.running = True
        self.stop_requested = False

    def stop(self) -> None:
        self.stop_requested = True
        if self.running:
            # Like the trainer: the current step ends, last.pt is saved, then the run reports "stopped".
            QTimer.singleShot(0, lambda: self.finish("stopped"))

    def is_running(self) -> bool:
        return self.running

    def shutdown(self) -> None:
        self.running = False
        self.shut_down = True

    def step(self, epoch: int, step: int, total: int, loss: float, epochs: int = 3) -> None:
        self.progress.emit(
            {
                "kind": "step",
                "epoch": epoch,
                "epochs": epochs,
                "step": step,
                "total_steps": total,
                "global_step": epoch * total + step,
                "loss": loss,
                "qwk": 0.1,
                "val_qwk": None,
                "images_per_s": 42.5,
                "eta_s": 125.0,
                "message": "",
            }
        )

    def epoch(self, epoch: int, total: int, qwk: float, val_qwk: float | None, epochs: int = 3):
        self.progress.emit(
            {
                "kind": "epoch",
                "epoch": epoch,
                "epochs": epochs,
                "step": total,
                "total_steps": total,
                "global_step": (epoch + 1) * total,
                "loss": 0.5,
                "qwk": qwk,
                "val_qwk": val_qwk,
                "images_per_s": 40.0,
                "eta_s": None,
                "message": f"epoch {epoch + 1}/{epochs}: val QWK {val_qwk}",
            }
        )

    def finish(self, status: str = "done") -> None:
        if not self.running:
            return
        self.running = False
        self.finished.emit(
            {
                "status": status,
                "best_path": self.best_path,
                "last_path": None,
                "best_qwk": 0.61,
                "message": "finished 3 epochs" if status == "done" else "stopped; saved last.pt",
            }
        )


@pytest.fixture
def dialog(qtbot, tmp_path):
    jobs: list[FakeJob] = []

    def factory(parent):
        jobs.append(FakeJob(parent))
        return jobs[-1]

    dlg = TrainDialog(job_factory=factory, out_root=tmp_path / "runs")
    qtbot.addWidget(dlg)
    dlg.out_edit.setText(str(tmp_path / "runs" / "run1"))
    dlg.count_spin.setValue(30)
    dlg.batch_spin.setValue(5)
    dlg.epochs_spin.setValue(3)
    dlg.show()
    dlg.job = jobs[0]
    yield dlg
    dlg.job.finish("stopped")
    dlg.close()


def _curve_len(curve) -> int:
    x, _ = curve.getData()
    return 0 if x is None else len(x)


def test_start_sends_the_form_as_a_config(dialog):
    dialog.arch_combo.setCurrentText("resnet18")
    dialog.size_spin.setValue(64)
    assert dialog.start()
    config = dialog.job.configs[-1]
    assert config["arch"] == "resnet18"
    assert config["data"] == "synth:30:0"
    assert config["batch"] == 5 and config["epochs"] == 3
    assert config["image_size"] == 64
    assert config["workers"] == 0
    assert config["loss"] == "kappa"
    assert not dialog.start_button.isEnabled() and dialog.stop_button.isEnabled()
    assert not dialog.arch_combo.isEnabled()


def test_progress_updates_plot_bar_and_labels(dialog, qtbot):
    dialog.start()
    job = dialog.job
    losses = [1.0, 0.8, 0.9, 0.6]
    means = np.cumsum(losses) / np.arange(1, 5)
    for i, m in enumerate(means, start=1):
        job.step(0, i, 4, float(m))
    qtbot.waitUntil(lambda: _curve_len(dialog.loss_curve) == 4, timeout=2000)
    _, raw = dialog.loss_raw_curve.getData()
    # The step events carry the epoch's running mean; the plot shows each step's own loss.
    np.testing.assert_allclose(raw, losses, rtol=1e-9)
    assert dialog.progress_bar.value() == round(1000 * (4 / 4) / 3)
    assert "step 4/4" in dialog.progress_label.text()
    assert (
        "42.5 images/s" in dialog.eta_label.text() and "ETA 2 min 05 s" in dialog.eta_label.text()
    )

    job.epoch(0, 4, qwk=0.2, val_qwk=0.35)
    job.epoch(1, 4, qwk=0.4, val_qwk=None)
    x, y = dialog.val_qwk_curve.getData()
    assert list(x) == [1.0, 2.0]
    assert y[0] == pytest.approx(0.35) and math.isnan(y[1])
    assert list(dialog.train_qwk_curve.getData()[1]) == pytest.approx([0.2, 0.4])
    assert "epoch 2/3" in dialog.log_label.text()


def test_stop_ends_the_run_and_restores_the_form(dialog, qtbot):
    dialog.start()
    dialog.job.step(0, 1, 4, 0.9)
    with qtbot.waitSignal(dialog.job.finished, timeout=2000):
        qtbot.mouseClick(dialog.stop_button, _left())
    assert dialog.job.stop_requested
    assert not dialog.is_running()
    assert dialog.start_button.isEnabled() and not dialog.stop_button.isEnabled()
    assert dialog.progress_label.text().startswith("Stopped")
    assert not dialog.open_button.isEnabled()  # no best.pt


def test_closing_mid_run_stops_first(dialog, qtbot):
    dialog.start()
    dialog.close()
    assert dialog.job.stop_requested
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=2000)
    assert dialog.job.shut_down


def test_model_ready_after_a_run_with_best_pt(dialog, qtbot, tmp_path):
    best = tmp_path / "best.pt"
    best.write_bytes(b"weights")
    dialog.start()
    dialog.job.best_path = str(best)
    dialog.job.epoch(0, 4, 0.3, 0.5)
    dialog.job.finish("done")
    assert dialog.progress_bar.value() == 1000
    assert dialog.open_button.isEnabled()
    with qtbot.waitSignal(dialog.modelReady, timeout=1000) as blocker:
        qtbot.mouseClick(dialog.open_button, _left())
    assert blocker.args == [str(best)]


def test_failure_is_one_line_in_the_dialog(dialog):
    dialog.start()
    dialog.job.running = False
    dialog.job.failed.emit("data/labels.csv: no column 'level'")
    assert dialog.log_label.text() == "data/labels.csv: no column 'level'"
    assert dialog.log_label.property("error") is True
    assert dialog.start_button.isEnabled()


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "no such folder"),
        ("empty", "no images"),
        ("no_labels", "no labels.csv"),
        ("too_few", "fewer than one batch"),
        ("out_taken", "already holds a run"),
        ("out_is_file", "not a folder"),
    ],
)
def test_validation_messages(dialog, tmp_path, setup, expected):
    folder = tmp_path / "data"
    folder.mkdir()
    if setup == "too_few":
        dialog.count_spin.setValue(3)
    elif setup == "out_taken":
        out = tmp_path / "taken"
        out.mkdir()
        (out / "last.pt").write_bytes(b"x")
        dialog.out_edit.setText(str(out))
    elif setup == "out_is_file":
        (tmp_path / "file").write_text("x")
        dialog.out_edit.setText(str(tmp_path / "file"))
    else:
        dialog.folder_radio.setChecked(True)
        if setup == "missing":
            dialog.folder_edit.setText(str(tmp_path / "nowhere"))
        else:
            dialog.folder_edit.setText(str(folder))
            if setup == "no_labels":
                Image.new("RGB", (8, 8)).save(folder / "a.png")
    assert not dialog.start()
    assert expected in dialog.log_label.text()
    assert "\n" not in dialog.log_label.text()
    assert dialog.job.configs == []
    assert dialog.start_button.isEnabled()


def test_image_folder_with_labels_is_accepted(dialog, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(folder / f"img{i}.png")
    (folder / "labels.csv").write_text("image,level\nimg0,0\nimg1,1\nimg2,2\n")
    dialog.folder_radio.setChecked(True)
    dialog.folder_edit.setText(str(folder))
    assert dialog.start()
    assert dialog.job.configs[-1]["data"] == str(folder)


def test_dialog_does_not_load_torch():
    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from retinaview.ui.train_dialog import TrainDialog\n"
        "d = TrainDialog()\n"
        "assert 'torch' not in sys.modules, 'torch loaded'\n"
    )
    env_root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=env_root, timeout=60)


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
