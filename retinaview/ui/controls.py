"""Controls of the overlay: class, map kind, smoothing, threshold, sign mode, opacity, colours, overlay and
green channel."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QWidget,
)

from retinaview.ui.colormaps import COLORMAPS, MODE_LABELS, MODES
from retinaview.ui.map_legend import method_label
from retinaview.ui.view_state import (
    KIND_LABELS,
    THRESHOLD_MAX,
    THRESHOLD_STEP,
    ViewState,
    kind_label,
)

SLIDER_STEPS = round(THRESHOLD_MAX / THRESHOLD_STEP)
MODE_TIPS = {
    "positive": "Show the pixels that raise the class score, beyond the threshold (M cycles)",
    "negative": "Show the pixels that lower the class score, beyond the threshold (M cycles)",
    "absolute": "Show both, beyond the threshold either way (M cycles)",
}


class ControlPanel(QWidget):
    """Edits a `ViewState`; ``changed`` is emitted after every edit with the new state."""

    changed = Signal(object)
    methodChanged = Signal(str)

    def __init__(self, state: ViewState | None = None, parent=None) -> None:
        super().__init__(parent)
        self._state = state or ViewState()
        self._updating = False

        self.cls = QComboBox()
        self.set_class_names(("No DR", "Mild", "Moderate", "Severe", "Proliferative"))
        self.grid = QCheckBox("All classes")
        self.grid.setToolTip("Show the five classes side by side, zoom linked (A)")
        self.method = QComboBox()
        self.method.setToolTip(
            "The explanation method of the map (the model's grade does not change)"
        )
        self.kind = QComboBox()
        self._kinds: tuple[str, ...] = tuple(KIND_LABELS)
        for key in self._kinds:
            self.kind.addItem(kind_label(key), key)
        self.kind.setToolTip(
            "Total: every layer's share mapped to the photograph. Input-dependent: x · ∂f/∂x. "
            "Constant: what the layers' biases and batch-norm shifts add (total − input)."
        )

        self.smooth = QCheckBox("Smoothed")
        self.smooth.setToolTip(
            "Smoothed: the map blurred by a small Gaussian, so a lesion shows as one patch instead of "
            "single-pixel speckle (S). Untick for the raw per-pixel map."
        )

        self.modes = QButtonGroup(self)
        mode_row = QHBoxLayout()
        mode_row.setSpacing(0)
        for k, mode in enumerate(MODES):
            b = QPushButton(MODE_LABELS[mode])
            b.setCheckable(True)
            b.setProperty("mode", mode)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip(MODE_TIPS[mode])
            self.modes.addButton(b, k)
            mode_row.addWidget(b)

        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, SLIDER_STEPS)
        self.threshold.setSingleStep(1)
        self.threshold.setPageStep(5)
        self.threshold.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.threshold.setToolTip("Keep the pixels beyond n standard deviations of the map (FOV)")
        self.threshold_value = QLabel()
        self.threshold_value.setObjectName("value")
        self.threshold_value.setAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        )
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity_value = QLabel()
        self.opacity_value.setObjectName("value")
        self.opacity_value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        self.colormap = QComboBox()
        for key, cmap in COLORMAPS.items():
            self.colormap.addItem(cmap.label, key)
        self.overlay = QCheckBox("Overlay")
        self.overlay.setToolTip("Show the map on the photograph (Space)")
        self.green = QCheckBox("Green channel")
        self.green.setToolTip(
            "Show the photograph's green channel, where lesions contrast best (G)"
        )

        def row(*widgets, stretch_first=True):
            box = QHBoxLayout()
            box.setSpacing(8)
            for k, w in enumerate(widgets):
                box.addWidget(w, 1 if (k == 0 and stretch_first) else 0)
            return box

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Method", self.method)
        form.addRow("Class", row(self.cls, self.grid))
        form.addRow("Map", self.kind)
        form.addRow("Show", mode_row)
        form.addRow("Threshold", row(self.threshold, self.threshold_value))
        form.addRow("Opacity", row(self.opacity, self.opacity_value))
        form.addRow("Colours", self.colormap)
        form.addRow("", row(self.overlay, self.smooth, stretch_first=False))
        form.addRow("", row(self.green, stretch_first=False))

        self.set_state(self._state)
        self.cls.currentIndexChanged.connect(self._edited)
        self.grid.toggled.connect(self._edited)
        self.kind.currentIndexChanged.connect(self._edited)
        self.modes.idToggled.connect(self._mode_toggled)
        self.threshold.valueChanged.connect(self._edited)
        self.opacity.valueChanged.connect(self._edited)
        self.colormap.currentIndexChanged.connect(self._edited)
        self.overlay.toggled.connect(self._edited)
        self.green.toggled.connect(self._edited)
        self.smooth.toggled.connect(self._edited)
        self.method.currentIndexChanged.connect(self._method_chosen)

    @property
    def state(self) -> ViewState:
        return self._state

    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    def set_class_names(self, names: tuple[str, ...]) -> None:
        self._class_names = tuple(names)
        current = self.cls.currentData()
        blocked = self.cls.blockSignals(True)
        self.cls.clear()
        self.cls.addItem("Predicted class", None)
        for k, name in enumerate(names):
            self.cls.addItem(f"{k} · {name}", k)
        self.cls.setCurrentIndex(max(self.cls.findData(current), 0))
        self.cls.blockSignals(blocked)

    def set_methods(self, names: tuple[str, ...], current: str) -> None:
        """Offer these explanation methods, ``current`` chosen (no ``methodChanged``)."""
        blocked = self.method.blockSignals(True)
        self.method.clear()
        for name in names:
            self.method.addItem(method_label(name), name)
        self.method.setCurrentIndex(max(self.method.findData(current), 0))
        self.method.blockSignals(blocked)

    def _method_chosen(self, _i: int) -> None:
        name = self.method.currentData()
        if name:
            self.methodChanged.emit(name)

    def set_kinds(self, kinds: tuple[str, ...]) -> None:
        """The map kinds of the shown result (rfscore: total, input, constant; most methods one map). The
        chosen kind is kept in the state when this result lacks it, so that rfscore shows it again."""
        kinds = tuple(kinds)
        if kinds == self._kinds:
            return
        self._kinds = kinds
        blocked = self.kind.blockSignals(True)
        self.kind.clear()
        for key in kinds:
            self.kind.addItem(kind_label(key), key)
        self.kind.setCurrentIndex(max(self.kind.findData(self._state.kind), 0))
        self.kind.setEnabled(len(kinds) > 1)
        self.kind.blockSignals(blocked)

    def kinds(self) -> tuple[str, ...]:
        return self._kinds

    def set_state(self, state: ViewState) -> None:
        """Show ``state`` in the widgets and emit ``changed`` once."""
        self._updating = True
        try:
            self.cls.setCurrentIndex(max(self.cls.findData(state.cls), 0))
            self.grid.setChecked(state.grid)
            self.kind.setCurrentIndex(max(self.kind.findData(state.kind), 0))
            self.modes.button(MODES.index(state.mode)).setChecked(True)
            self.threshold.setValue(round(state.threshold / THRESHOLD_STEP))
            self.opacity.setValue(round(state.opacity * 100))
            self.colormap.setCurrentIndex(max(self.colormap.findData(state.colormap), 0))
            self.overlay.setChecked(state.overlay)
            self.green.setChecked(state.green)
            self.smooth.setChecked(state.smooth)
        finally:
            self._updating = False
        self._edited()

    def change(self, **changes) -> None:
        """Change some fields (keyboard shortcuts) as if the user had used the widgets."""
        self.set_state(replace(self._state, **changes))

    @Slot(int, bool)
    def _mode_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self._edited()

    def _chosen_kind(self) -> str:
        # A result with one kind cannot change the kind: the one chosen for rfscore stays.
        if self.kind.count() <= 1:
            return self._state.kind
        return self.kind.currentData()

    def _edited(self, *_) -> None:
        if self._updating:
            return
        mode_button = self.modes.checkedButton()
        self._state = ViewState(
            cls=self.cls.currentData(),
            grid=self.grid.isChecked(),
            kind=self._chosen_kind(),
            mode=mode_button.property("mode") if mode_button else "positive",
            threshold=round(self.threshold.value() * THRESHOLD_STEP, 1),
            opacity=self.opacity.value() / 100,
            colormap=self.colormap.currentData(),
            overlay=self.overlay.isChecked(),
            green=self.green.isChecked(),
            smooth=self.smooth.isChecked(),
        )
        self.threshold_value.setText(f"{self._state.threshold:.1f} σ")
        self.opacity_value.setText(f"{self.opacity.value()} %")
        self.changed.emit(self._state)
