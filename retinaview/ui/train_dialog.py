"""Tools > Train model...: choose an architecture, data and output folder, watch loss and QWK live, stop.

The dialog only wires controls to a training job (by default `retinaview.engine.training.TrainingJob`, which
runs the trainer in its own thread); tests pass ``job_factory`` to drive it with scripted progress. The form is
checked before a run starts by `retinaview.train.options` (torch-free; the command line and the trainer use the
same check and wording) and a problem is shown as one line inside the dialog. Step events can arrive faster
than a screen refreshes, so the curves are redrawn at most every ``REDRAW_MS``. The x-axis is in epochs: a
step is a fraction of its epoch, and the axis spans the whole run from the start.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from retinaview.core.common.errors import RetinaviewError
from retinaview.train.options import ARCHITECTURE_NAMES, LOSSES, first_problem
from retinaview.ui.settings import app_settings
from retinaview.ui.theme import ACCENT, BORDER, IMAGE_BACKGROUND, MUTED, TEXT

RESUME_TEXT = "Continue the run saved in this folder"
# How the dialog names the options in the one-line problems of retinaview.train.options.
DIALOG_NAMES = {
    "arch": "Architecture",
    "data": "Data",
    "labels": "the labels file",
    "epochs": "Epochs",
    "batch": "Batch size",
    "lr": "Learning rate",
    "loss": "Loss",
    "image_size": "Image size",
    "out": "output folder",
    "resume": f"'{RESUME_TEXT}'",
}
# What the loss axis says, per loss: the kappa loss is negative and falls as the grader improves.
LOSS_TITLES = {
    "kappa": "Kappa loss log(1 − κ): 0 at chance, negative as κ grows; lower is better",
    "ce": "Cross-entropy loss; lower is better",
    "kappa+ce": "log(1 − κ) + cross-entropy; lower is better",
}
REDRAW_MS = 100
SETTINGS_GROUP = "train"

LOSS_COLOUR = "#ffb454"
# The per-step loss: light and opaque enough to read on the dark plot (the smoothed line is drawn over it).
STEP_LOSS_COLOUR = (255, 214, 160, 190)
TRAIN_QWK_COLOUR = ACCENT
VAL_QWK_COLOUR = "#7bd88f"


class Job(Protocol):
    """What the dialog needs from a training job (`retinaview.engine.training.TrainingJob` has it)."""

    progress: Any  # Signal(dict): a TrainEvent as a dict
    finished: Any  # Signal(dict): a TrainResult as a dict
    failed: Any  # Signal(str)

    def start(self, config: dict[str, Any]) -> None: ...
    def stop(self) -> None: ...
    def is_running(self) -> bool: ...
    def shutdown(self) -> None: ...


def _default_job(parent: QObject) -> Job:
    from retinaview.engine.training import TrainingJob

    return TrainingJob(parent)


class TrainDialog(QDialog):
    """Train a model from the GUI.

    Parameters
    ----------
    parent
        The main window (the dialog stays on top of it, non-modal).
    architectures
        Names offered in the architecture box (default: the registered ones, from the torch-free
        `retinaview.train.options.ARCHITECTURE_NAMES`).
    job_factory
        ``factory(parent) -> job`` with the `Job` interface; default a `TrainingJob`.
    out_root
        Folder in which new run folders are proposed (default: remembered, else ~/retinaview-runs).

    Signals
    -------
    modelReady(str)
        The path of the run's best.pt, when the user clicks "Open model".
    """

    modelReady = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        architectures: Sequence[str] = ARCHITECTURE_NAMES,
        job_factory: Callable[[QObject], Job] | None = None,
        out_root: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a model")
        self.setObjectName("trainDialog")
        self._job = (job_factory or _default_job)(self)
        self._job.progress.connect(self._on_progress)
        self._job.finished.connect(self._on_finished)
        self._job.failed.connect(self._on_failed)
        self._running = False
        self._stopping = False
        self._close_when_done = False
        self._best_path: str | None = None
        self._t_start = 0.0
        self._epochs = 1
        self._last_event: dict[str, Any] = {}
        self._reset_series()
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self.refresh_plot)

        form = self._build_form(architectures)
        right = self._build_monitor()
        body = QHBoxLayout()
        body.setSpacing(12)
        body.addWidget(form)
        body.addWidget(right, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addLayout(body, 1)
        layout.addWidget(self._build_output())
        layout.addLayout(self._build_buttons())
        self._restore_settings(out_root)
        self._update_data_mode()
        self._set_running(False)
        self.setStyleSheet(
            f"QWidget:disabled {{ color: {MUTED}; }}"
            "QLineEdit { min-height: 22px; padding: 1px 4px; }"
            "QToolButton { min-height: 0px; padding: 2px 8px; }"
        )
        self.resize(1040, 660)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # ------------------------------------------------------------------------------------- building

    def _build_form(self, architectures: Sequence[str]) -> QWidget:
        panel = QWidget()
        panel.setFixedWidth(340)
        col = QVBoxLayout(panel)
        col.setContentsMargins(0, 0, 0, 0)

        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        self.arch_combo = QComboBox()
        self.arch_combo.addItems(list(architectures))
        model_form.addRow("Architecture", self.arch_combo)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(0, 1024)
        self.size_spin.setSingleStep(32)
        self.size_spin.setSpecialValueText("model default")
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip(
            "Side of the square training images; 'model default' is its input size"
        )
        model_form.addRow("Image size", self.size_spin)
        col.addWidget(model_box)

        data_box = QGroupBox("Data")
        grid = QGridLayout(data_box)
        self.synth_radio = QRadioButton("Synthetic images")
        self.folder_radio = QRadioButton("Image folder")
        self._data_group = QButtonGroup(self)
        self._data_group.addButton(self.synth_radio)
        self._data_group.addButton(self.folder_radio)
        self.synth_radio.setChecked(True)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 1_000_000)
        self.count_spin.setSingleStep(100)
        self.count_spin.setValue(2000)
        self.count_spin.setSuffix(" images")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setPrefix("seed ")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("images + labels.csv")
        self.folder_button = QToolButton()
        self.folder_button.setText("…")
        self.folder_button.setToolTip("Choose the image folder")
        grid.addWidget(self.synth_radio, 0, 0, 1, 3)
        grid.addWidget(self.count_spin, 1, 0, 1, 2)
        grid.addWidget(self.seed_spin, 1, 2)
        grid.addWidget(self.folder_radio, 2, 0, 1, 3)
        grid.addWidget(self.folder_edit, 3, 0, 1, 2)
        grid.addWidget(self.folder_button, 3, 2)
        self.folder_edit.setToolTip(
            "A folder of photographs with labels.csv beside them:\n"
            "image,level (EyePACS) or id_code,diagnosis (APTOS)"
        )
        grid.setColumnStretch(0, 1)
        col.addWidget(data_box)

        train_box = QGroupBox("Training")
        train_form = QFormLayout(train_box)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10_000)
        self.epochs_spin.setValue(10)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setValue(15)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1.0)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(3e-4)
        self.loss_combo = QComboBox()
        for key, label in LOSSES.items():
            self.loss_combo.addItem(label, key)
        train_form.addRow("Epochs", self.epochs_spin)
        train_form.addRow("Batch size", self.batch_spin)
        train_form.addRow("Learning rate", self.lr_spin)
        train_form.addRow("Loss", self.loss_combo)
        col.addWidget(train_box)

        col.addStretch(1)

        self.synth_radio.toggled.connect(self._update_data_mode)
        self.folder_button.clicked.connect(self._choose_folder)
        self._inputs: list[QWidget] = [model_box, data_box, train_box]
        return panel

    def _build_output(self) -> QWidget:
        # The whole width of the dialog, so that a run folder's path is shown whole.
        out_box = QGroupBox("Output folder")
        row = QHBoxLayout(out_box)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("run folder (best.pt, last.pt, metrics.jsonl)")
        self.out_edit.textChanged.connect(self.out_edit.setToolTip)
        self.out_button = QToolButton()
        self.out_button.setText("…")
        self.out_button.setToolTip("Choose the run folder")
        self.resume_check = QCheckBox(RESUME_TEXT)
        self.resume_check.setToolTip(
            "Continue from last.pt in this folder (after Stop, or a run that was cut short)"
        )
        row.addWidget(self.out_edit, 1)
        row.addWidget(self.out_button)
        row.addSpacing(12)
        row.addWidget(self.resume_check)
        self.out_button.clicked.connect(self._choose_out)
        self._inputs.append(out_box)
        return out_box

    def _build_monitor(self) -> QWidget:
        panel = QWidget()
        col = QVBoxLayout(panel)
        col.setContentsMargins(0, 6, 0, 0)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setBackground(IMAGE_BACKGROUND)
        self.plot.setMinimumSize(420, 300)
        self.loss_plot = self.plot.addPlot(row=0, col=0)
        self.qwk_plot = self.plot.addPlot(row=1, col=0)
        for item, ylabel in ((self.loss_plot, "loss"), (self.qwk_plot, "QWK")):
            item.showGrid(x=True, y=True, alpha=0.15)
            item.setLabel("left", ylabel, color=MUTED)
            item.setLabel("bottom", "epoch", color=MUTED)
            for name in ("left", "bottom"):
                axis = item.getAxis(name)
                axis.setPen(pg.mkPen(BORDER))
                axis.setTextPen(pg.mkPen(MUTED))
                # Epochs and losses as plain numbers, never "epoch (x0.001)".
                axis.enableAutoSIPrefix(False)
            item.setMouseEnabled(x=True, y=False)
            item.hideButtons()
        self._set_loss_title()
        self.loss_combo.currentIndexChanged.connect(self._set_loss_title)
        self.qwk_plot.setTitle(
            "Quadratic weighted kappa: 1 perfect, 0 chance; higher is better",
            color=MUTED,
            size="9pt",
        )
        self.qwk_plot.setXLink(self.loss_plot)
        self._set_epoch_range(self.epochs_spin.value())
        self.qwk_plot.setYRange(-0.1, 1.0, padding=0.02)
        self.loss_plot.addLegend(offset=(-10, 8), labelTextColor=TEXT, brush=(15, 16, 18, 200))
        # Bottom right: QWK rises during a run, so its points end at the top right.
        self.qwk_plot.addLegend(offset=(-10, -8), labelTextColor=TEXT, brush=(15, 16, 18, 200))
        self.loss_raw_curve = self.loss_plot.plot(
            pen=pg.mkPen(*STEP_LOSS_COLOUR), name="train loss (per step)"
        )
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen(LOSS_COLOUR, width=2), name="smoothed")
        self.train_qwk_curve = self.qwk_plot.plot(
            pen=pg.mkPen(TRAIN_QWK_COLOUR, width=2),
            symbol="o",
            symbolSize=6,
            symbolBrush=TRAIN_QWK_COLOUR,
            symbolPen=None,
            name="train QWK",
        )
        self.val_qwk_curve = self.qwk_plot.plot(
            pen=pg.mkPen(VAL_QWK_COLOUR, width=2),
            symbol="s",
            symbolSize=7,
            symbolBrush=VAL_QWK_COLOUR,
            symbolPen=None,
            name="validation QWK",
        )
        col.addWidget(self.plot, 1)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_label = QLabel("Not started")
        self.progress_label.setObjectName("value")
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("muted")
        self.eta_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        status = QHBoxLayout()
        status.addWidget(self.progress_label, 1)
        status.addWidget(self.eta_label)
        col.addLayout(status)
        col.addWidget(self.progress_bar)
        self.log_label = QLabel("Choose the data and an output folder, then Start.")
        self.log_label.setObjectName("trainLog")
        # Wrapped, so that a long path or the stop message is read whole.
        self.log_label.setWordWrap(True)
        self.log_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        col.addWidget(self.log_label)
        return panel

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.open_button = QPushButton("Open model")
        self.open_button.setToolTip("Load the best model of this run into the viewer")
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "Stop after the current step; the run is saved and can be continued"
        )
        self.close_button = QPushButton("Close")
        row.addWidget(self.open_button)
        row.addStretch(1)
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.close_button)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.open_button.clicked.connect(self._open_model)
        self.close_button.clicked.connect(self.close)
        return row

    # ------------------------------------------------------------------------------------- inputs

    def config(self) -> dict[str, Any]:
        """The `TrainConfig` fields the form stands for (no validation)."""
        seed = self.seed_spin.value()
        if self.synth_radio.isChecked():
            data = f"synth:{self.count_spin.value()}:{seed}"
        else:
            data = self.folder_edit.text().strip()
        return {
            "out": self.out_edit.text().strip(),
            "arch": self.arch_combo.currentText(),
            "data": data,
            "epochs": self.epochs_spin.value(),
            "batch": self.batch_spin.value(),
            "lr": self.lr_spin.value(),
            "loss": self.loss_combo.currentData(),
            "seed": seed,
            "image_size": self.size_spin.value() or None,
            "resume": self.resume_check.isChecked(),
            "workers": 0,  # never start DataLoader processes from the GUI process
            "command": "retinaview GUI: Tools > Train model",
        }

    def validate(self) -> str | None:
        """One line saying what is wrong with the form, or None when a run can start.

        The check and its wording are `retinaview.train.options`', shared with ``retinaview train``.
        """
        return first_problem(self.config(), DIALOG_NAMES)

    @Slot()
    def _update_data_mode(self) -> None:
        synth = self.synth_radio.isChecked()
        self.count_spin.setEnabled(synth)
        self.folder_edit.setEnabled(not synth)
        self.folder_button.setEnabled(not synth)

    @Slot()
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder of training images", self.folder_edit.text()
        )
        if folder:
            self.folder_edit.setText(folder)
            self.folder_radio.setChecked(True)

    @Slot()
    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)

    # ------------------------------------------------------------------------------------- running

    @Slot()
    def start(self) -> bool:
        """Validate and start a run; False (with a message in the dialog) when the form is not usable."""
        if self._running:
            return False
        problem = self.validate()
        if problem:
            self._log(problem, error=True)
            return False
        config = self.config()
        self._save_settings()
        self._reset_series()
        self.refresh_plot()
        self._best_path = None
        self._t_start = time.monotonic()
        self._set_running(True)
        self._epochs = int(config["epochs"])
        self._last_event = {}
        self._set_epoch_range(self._epochs)
        self._set_loss_title()
        # Busy until the first step: torch loads and the first data are made for up to half a minute.
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText("Preparing the data · loading torch and the model…")
        self.eta_label.setText("")
        self._log(
            f"Training {config['arch']} on {_describe_data(config['data'])} into {config['out']}"
        )
        try:
            self._job.start(config)
        except (RetinaviewError, RuntimeError) as exc:
            self._set_running(False)
            self._log(str(exc), error=True)
            return False
        return True

    @Slot()
    def stop(self) -> None:
        """Ask the run to stop after the current step (it is saved and can be continued)."""
        if not self._running or self._stopping:
            return
        self._stopping = True
        self._job.stop()
        self.stop_button.setEnabled(False)
        self._log("Stopping after this step…")

    def is_running(self) -> bool:
        return self._running

    def shutdown(self) -> None:
        """Stop a run and wait for its thread (the app is quitting)."""
        if self._running:
            self._job.stop()
        self._job.shutdown()
        self._running = False

    def best_path(self) -> str | None:
        """The best.pt of the last run, when it produced one."""
        return self._best_path

    @Slot(object)
    def _on_progress(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        epochs = max(int(event.get("epochs") or 1), 1)
        total = max(int(event.get("total_steps") or 1), 1)
        epoch = int(event.get("epoch") or 0)
        step = int(event.get("step") or 0)
        if kind == "step" and event.get("loss") is not None:
            self._add_step_loss(epoch, step, total, float(event["loss"]))
            self._schedule_redraw()
        elif kind == "epoch":
            self._epoch_x.append(epoch + 1.0)
            self._train_qwk.append(_number(event.get("qwk")))
            self._val_qwk.append(_number(event.get("val_qwk")))
            self.refresh_plot()
        if kind in ("step", "epoch") and event.get("total_steps"):
            self._last_event = event
            if epochs != self._epochs:
                self._epochs = epochs
                self._set_epoch_range(epochs)
            self.progress_bar.setRange(0, 1000)
            done = (epoch + step / total) / epochs
            self.progress_bar.setValue(round(1000 * min(max(done, 0.0), 1.0)))
            self.progress_label.setText(
                f"Epoch {min(epoch + 1, epochs)}/{epochs} · step {step}/{total}"
            )
            self.eta_label.setText(_rate_eta(event.get("images_per_s"), event.get("eta_s")))
        message = event.get("message")
        if message and not self._stopping:
            self._log(str(message))

    @Slot(object)
    def _on_finished(self, result: dict[str, Any]) -> None:
        self.refresh_plot()
        status = str(result.get("status", "done"))
        best = result.get("best_path")
        self._best_path = str(best) if best and Path(best).is_file() else None
        self.progress_bar.setRange(0, 1000)
        if status == "done":
            self.progress_bar.setValue(1000)
        elapsed = _duration(time.monotonic() - self._t_start)
        best_qwk = result.get("best_qwk")
        qwk = f"; best validation QWK {best_qwk:.3f}" if isinstance(best_qwk, float) else ""
        self.progress_label.setText(f"{status.capitalize()} after {elapsed}{qwk}")
        self.eta_label.setText("")
        self._log(self._end_message(result))
        self._end_run()

    def _end_message(self, result: dict[str, Any]) -> str:
        """What happened, in the dialog's words (the trainer's message names command-line flags)."""
        status = str(result.get("status", "done"))
        out = result.get("out") or self.out_edit.text().strip()
        if status == "done":
            n = int(result.get("epochs_done") or self._epochs)
            best = " Open model loads its best.pt." if self._best_path else ""
            return f"Finished {_plural(n, 'epoch')}; the run is in {out}.{best}"
        event = self._last_event
        where = ""
        if event:
            epoch = min(int(event.get("epoch") or 0) + 1, self._epochs)
            where = f" in epoch {epoch}, step {int(event.get('step') or 0)}"
        what = {"time-limit": "Reached the time limit"}.get(status, status.capitalize())
        return (
            f"{what}{where}; saved {Path(out) / 'last.pt'}. To continue, keep this output folder, "
            f"tick '{RESUME_TEXT}' and press Start."
        )

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.progress_bar.setRange(0, 1000)
        self.progress_label.setText("Failed")
        self.eta_label.setText("")
        self._log(message, error=True)
        self._end_run()

    def _end_run(self) -> None:
        self._set_running(False)
        if self._close_when_done:
            self._close_when_done = False
            self.close()

    @Slot()
    def _open_model(self) -> None:
        if self._best_path and Path(self._best_path).is_file():
            self.modelReady.emit(self._best_path)
            self._log(f"Opened {self._best_path} in the viewer")
        else:
            self._log(
                "This run has no best.pt yet (it is written after the first validation)", error=True
            )

    def _set_running(self, running: bool) -> None:
        self._running = running
        if not running:
            self._stopping = False
        for box in self._inputs:
            box.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.open_button.setEnabled(not running and self._best_path is not None)

    def _log(self, text: str, error: bool = False) -> None:
        colour = "#ff8a75" if error else MUTED
        self.log_label.setStyleSheet(f"color: {colour};")
        self.log_label.setText(text)
        self.log_label.setToolTip(text)
        self.log_label.setProperty("error", error)

    # ------------------------------------------------------------------------------------- plot

    def _reset_series(self) -> None:
        self._step_x: list[float] = []
        self._step_loss: list[float] = []
        self._smooth_loss: list[float] = []
        self._ema = 0.0
        self._ema_weight = 0.0
        self._last_step: tuple[int, int, float] | None = None
        self._epoch_x: list[float] = []
        self._train_qwk: list[float] = []
        self._val_qwk: list[float] = []

    def _add_step_loss(self, epoch: int, step: int, total: int, mean_loss: float) -> None:
        # Step events carry the running mean over the epoch; difference it back into the step's loss.
        last = self._last_step
        if last is not None and last[0] == epoch and last[1] == step - 1 and step > 1:
            loss = step * mean_loss - (step - 1) * last[2]
        else:
            loss = mean_loss
        self._last_step = (epoch, step, mean_loss)
        # Exponential moving average with bias correction, spanning about a quarter of an epoch.
        span = min(50, max(5, total // 4))
        a = 2.0 / (span + 1)
        self._ema = (1 - a) * self._ema + a * loss
        self._ema_weight = (1 - a) * self._ema_weight + a
        self._step_x.append(epoch + step / total)
        self._step_loss.append(loss)
        self._smooth_loss.append(self._ema / self._ema_weight)

    @Slot()
    def _set_loss_title(self) -> None:
        title = LOSS_TITLES.get(self.loss_combo.currentData(), "Loss; lower is better")
        self.loss_plot.setTitle(title, color=MUTED, size="9pt")

    def _set_epoch_range(self, epochs: int) -> None:
        """The x-axis spans the run, 0 to its last epoch, from the first step on."""
        self.loss_plot.enableAutoRange(x=False)
        self.loss_plot.setXRange(0, max(int(epochs), 1), padding=0.02)

    def _schedule_redraw(self) -> None:
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    @Slot()
    def refresh_plot(self) -> None:
        """Draw the series collected so far (step events only schedule this)."""
        self._redraw_timer.stop()
        x = np.asarray(self._step_x, dtype=np.float64)
        self.loss_raw_curve.setData(x, np.asarray(self._step_loss, dtype=np.float64))
        self.loss_curve.setData(x, np.asarray(self._smooth_loss, dtype=np.float64))
        ex = np.asarray(self._epoch_x, dtype=np.float64)
        self.train_qwk_curve.setData(ex, np.asarray(self._train_qwk, dtype=np.float64))
        val = np.asarray(self._val_qwk, dtype=np.float64)
        self.val_qwk_curve.setData(ex, val, connect="finite")
        # QWK lies in [-1, 1]; show 0..1 (where learning happens) and widen only for worse-than-chance runs.
        qwk = np.concatenate([np.asarray(self._train_qwk, dtype=np.float64), val])
        qwk = qwk[np.isfinite(qwk)]
        low = min(-0.1, float(qwk.min()) - 0.05) if qwk.size else -0.1
        self.qwk_plot.setYRange(max(low, -1.05), 1.0, padding=0.02)

    # ------------------------------------------------------------------------------------- settings

    def _restore_settings(self, out_root: str | os.PathLike[str] | None) -> None:
        s = app_settings()
        s.beginGroup(SETTINGS_GROUP)
        arch = s.value("arch", "")
        if isinstance(arch, str) and self.arch_combo.findText(arch) >= 0:
            self.arch_combo.setCurrentText(arch)
        folder = s.value("data_folder", "")
        if isinstance(folder, str) and folder:
            self.folder_edit.setText(folder)
        root = out_root or s.value("out_root", "") or Path.home() / "retinaview-runs"
        s.endGroup()
        self.out_edit.setText(str(Path(root) / time.strftime("train-%Y%m%d-%H%M%S")))

    def _save_settings(self) -> None:
        s = app_settings()
        s.beginGroup(SETTINGS_GROUP)
        s.setValue("arch", self.arch_combo.currentText())
        if self.folder_edit.text().strip():
            s.setValue("data_folder", self.folder_edit.text().strip())
        out = self.out_edit.text().strip()
        if out:
            s.setValue("out_root", str(Path(out).parent))
        s.endGroup()

    # ------------------------------------------------------------------------------------- closing

    def closeEvent(self, event) -> None:
        if self._running:
            # Closing mid-run stops it cleanly (saved after the current step), then closes the dialog.
            self._close_when_done = True
            self.stop()
            event.ignore()
            return
        self._job.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:
        if self._running:
            self.close()
            return
        super().reject()


# ----------------------------------------------------------------------------------------- helpers


def _describe_data(data: str) -> str:
    if data.startswith("synth:"):
        parts = data.split(":")
        return f"{parts[1]} synthetic images"
    return data


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _rate_eta(images_per_s: Any, eta_s: Any) -> str:
    parts = []
    if isinstance(images_per_s, int | float) and images_per_s > 0:
        parts.append(f"{images_per_s:.1f} images/s")
    if isinstance(eta_s, int | float) and math.isfinite(eta_s):
        parts.append(f"ETA {_duration(eta_s)}")
    return " · ".join(parts)
