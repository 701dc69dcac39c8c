"""The training dialog with a scripted job: plot and progress follow the events, stop, validation, open model."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtCore import QObject, QTimer, Signal

from retinaview.train.options import ARCHITECTURE_NAMES
from retinaview.ui.theme import IMAGE_BACKGROUND
from retinaview.ui.train_dialog import RESUME_TEXT, STEP_LOSS_COLOUR, TrainDialog
from tests.ui_layout import SCREEN_SIZES, text_problems


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
        self.epochs_done = 3

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
                "epochs_done": self.epochs_done,
                "out": self.configs[-1]["out"] if self.configs else "",
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
        ("no_labels", "no labels CSV"),
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


def test_epoch_axis_is_plain_epochs_from_the_first_step(dialog, qtbot):
    dialog.epochs_spin.setValue(1)
    dialog.start()
    dialog.job.step(0, 1, 400, 0.4, epochs=1)
    dialog.refresh_plot()
    qtbot.wait(10)
    (x0, x1), _ = dialog.loss_plot.viewRange()
    # A step is a fraction of an epoch; the axis spans the run, never negative epochs.
    assert -0.05 <= x0 <= 0 and 1 <= x1 <= 1.05
    for plot in (dialog.loss_plot, dialog.qwk_plot):
        axis = plot.getAxis("bottom")
        assert axis.autoSIPrefixScale == 1.0
        assert "x0.001" not in axis.labelString() and "epoch" in axis.labelString()


def test_loss_axis_says_what_the_kappa_loss_is(dialog):
    title = dialog.loss_plot.titleLabel.text
    assert "log(1 − κ)" in title and "lower is better" in title and "negative" in title
    dialog.loss_combo.setCurrentIndex(dialog.loss_combo.findData("ce"))
    assert "Cross-entropy" in dialog.loss_plot.titleLabel.text


def test_busy_from_start_until_the_first_step(dialog):
    dialog.start()
    assert dialog.progress_bar.maximum() == 0  # busy indicator
    assert "loading torch" in dialog.progress_label.text()
    dialog.job.step(0, 1, 4, 0.9)
    assert dialog.progress_bar.maximum() == 1000
    assert "step 1/4" in dialog.progress_label.text()


def test_finished_one_epoch_grammar(dialog):
    dialog.epochs_spin.setValue(1)
    dialog.start()
    dialog.job.epochs_done = 1
    dialog.job.finish("done")
    assert "Finished 1 epoch;" in dialog.log_label.text()
    assert "epochs" not in dialog.log_label.text()


def test_stop_message_points_to_the_resume_checkbox_and_fits(dialog, qtbot):
    dialog.start()
    dialog.job.step(1, 3, 4, 0.9)
    with qtbot.waitSignal(dialog.job.finished, timeout=2000):
        dialog.stop()
    text = dialog.log_label.text()
    assert RESUME_TEXT in text and "--resume" not in text
    assert "epoch 2, step 3" in text
    qtbot.wait(20)  # the wrapped line gets its height in the next layout pass
    assert text_problems(dialog) == []


def test_output_folder_is_shown_whole(dialog):
    edit = dialog.out_edit
    need = edit.fontMetrics().horizontalAdvance(edit.text()) + 12
    assert need <= edit.width(), (need, edit.width(), edit.text())
    assert edit.toolTip() == edit.text()


def _contrast(a, b) -> float:
    def lum(rgb):
        c = np.asarray(rgb[:3], dtype=np.float64) / 255
        c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_per_step_loss_line_is_readable_on_the_dark_plot(dialog):
    from PySide6.QtGui import QColor

    colour = pg.mkPen(dialog.loss_raw_curve.opts["pen"]).color()
    back = QColor(IMAGE_BACKGROUND)
    alpha = colour.alphaF()
    front = np.array([colour.red(), colour.green(), colour.blue()], dtype=np.float64)
    behind = np.array([back.red(), back.green(), back.blue()], dtype=np.float64)
    seen = alpha * front + (1 - alpha) * behind
    # WCAG's 3:1 for graphical objects, against the plot's background.
    assert _contrast(seen, behind) >= 3.0, seen
    assert colour.getRgb() == STEP_LOSS_COLOUR


def test_architectures_come_from_the_registry_list(dialog):
    items = [dialog.arch_combo.itemText(i) for i in range(dialog.arch_combo.count())]
    assert tuple(items) == ARCHITECTURE_NAMES


@pytest.mark.parametrize("size", [None, *SCREEN_SIZES])
def test_dialog_text_fits(dialog, qtbot, size):
    if size is not None:
        dialog.resize(*size)
    dialog.start()
    for i in range(1, 5):
        dialog.job.step(0, i, 4, 0.5)
    dialog.job.epoch(0, 4, 0.3, 0.4)
    qtbot.wait(20)
    assert text_problems(dialog) == []
    with qtbot.waitSignal(dialog.job.finished, timeout=2000):
        dialog.stop()
    qtbot.wait(20)
    assert text_problems(dialog) == []
