"""The Vessels panel: DRIU's vessel map (Maninis et al. 2016) over the photograph, Grad-CAM at every layer
(Selvaraju et al. 2017), the side-output weights as sliders with the live map and live figures, and the
vessel underlay of the main overlay.

Everything is computed in the engine's worker (`retinaview.engine.worker.Engine.segment`); this module only
draws what comes back. The vessel probability is drawn once per result as a uint8 index image (probability
x 255) and the threshold moves only its lookup table (pyqtgraph's ImageItem performance rules). Slider moves
are throttled: one request per `THROTTLE_MS` at most, and the engine runs only the newest of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QBrush,
    QColor,
    QIcon,
    QImage,
    QLinearGradient,
    QPainter,
    QPen,
    QPixmap,
    QTransform,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGraphicsRectItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from retinaview.core.common.colormaps import DEFAULT_PALETTE, lut, palette
from retinaview.engine.requests import (
    UNDERLAY_VIEW,
    UNIT_WEIGHTS,
    VESSELS_VIEW,
    SegmentResult,
)
from retinaview.ui.overlay_view import Title, link_views
from retinaview.ui.theme import ACCENT, IMAGE_BACKGROUND, MUTED, TEXT

THROTTLE_MS = 150
# Side-output weights: 0 to 3 in steps of 0.1 (the slider counts tenths).
WEIGHT_MAX = 3.0
WEIGHT_STEP = 0.1
BRANCHES = ("conv1_2", "upsample2", "upsample4", "upsample8")
BRANCH_TIPS = (
    "Side output of the first stage (full resolution): thin vessels and edges",
    "Side output of the second stage, upsampled 2x",
    "Side output of the third stage, upsampled 4x",
    "Side output of the fourth stage, upsampled 8x: the coarse vessel tree",
)
THUMB = (
    96  # pixels of a strip picture; the strip shows them at 40 to 96 px, all in the panel's width
)
THUMB_MIN = 40
# Little padding around the strip's pictures, so that all fourteen fit beside each other at 1440 px.
STRIP_STYLE = "QToolButton { padding: 2px; }"
# Vessels in a light blue that stands apart from the fundus' reds and from the grader's map colours.
VESSEL_DARK = np.array((20, 90, 200), np.float64)
VESSEL_LIGHT = np.array((150, 235, 255), np.float64)
# Under the grader's maps the vessels are a neutral grey-white, so that no map colour is taken.
UNDERLAY_DARK = np.array((150, 150, 150), np.float64)
UNDERLAY_LIGHT = np.array((245, 245, 245), np.float64)
UNDERLAY_ALPHA = 150


def vessel_lut(
    threshold: float,
    alpha: int = 255,
    dark: np.ndarray = VESSEL_DARK,
    light: np.ndarray = VESSEL_LIGHT,
) -> np.ndarray:
    """(256, 4) uint8 lookup table of a probability index image (index = probability x 255): transparent
    below ``threshold``, then ``dark`` to ``light`` (blue by default) up to probability 1."""
    p = np.arange(256, dtype=np.float64) / 255.0
    t = np.clip((p - threshold) / max(1.0 - threshold, 1e-6), 0.0, 1.0)[:, None]
    out = np.zeros((256, 4), np.uint8)
    out[:, :3] = np.rint(dark * (1 - t) + light * t)
    out[:, 3] = np.where(p >= threshold, alpha, 0)
    return out


def probability_index(probability: np.ndarray, fov: np.ndarray | None = None) -> np.ndarray:
    """(S, S) uint8 index image of a probability map (0 outside the field of view)."""
    index = np.rint(np.clip(probability, 0.0, 1.0) * 255.0).astype(np.uint8)
    if fov is not None:
        index[~fov] = 0
    return np.ascontiguousarray(index)


def cam_index(cam: np.ndarray, signed: bool, fov: np.ndarray | None = None) -> np.ndarray:
    """(S, S) uint8 index of a Grad-CAM map: 128 + 127 x map / max|map| when signed (index 128 = 0),
    else 255 x map / max; the maximum over the field of view, and nothing drawn outside it (the black
    border around the fundus would otherwise frame every map)."""
    inside = np.ones(cam.shape, bool) if fov is None else fov
    zero = 128 if signed else 0
    peak = float(np.max(np.abs(cam[inside]))) if inside.any() else 0.0
    if peak <= 0 or not np.isfinite(peak):
        return np.full(cam.shape, zero, np.uint8)
    if signed:
        index = np.rint(128 + 127 * np.clip(cam / peak, -1, 1)).astype(np.uint8)
    else:
        index = np.rint(255 * np.clip(cam / peak, 0, 1)).astype(np.uint8)
    index[~inside] = zero
    return index


def cam_lut(signed: bool) -> np.ndarray:
    """(256, 4) uint8: the diverging palette centred on 0 (signed) or inferno, alpha rising with |map|."""
    table = lut(DEFAULT_PALETTE if signed else "inferno")
    if signed:
        strength = np.abs(np.arange(256) - 128) / 127
    else:
        strength = np.arange(256) / 255
    table[:, 3] = np.rint(np.clip(strength * 1.6, 0, 1) * 230).astype(np.uint8)
    return table


def _transform(to_photo: tuple[float, float, float, float]) -> QTransform:
    """The item transform that places a model-resolution image on the photograph (as the overlay does)."""
    a_y, b_y, a_x, b_x = to_photo
    return QTransform(a_x, 0, 0, a_y, b_x + 0.5 - 0.5 * a_x, b_y + 0.5 - 0.5 * a_y)


def _thumbnail(index: np.ndarray, table: np.ndarray) -> QPixmap:
    """A THUMB-pixel square picture of an index image through ``table`` over the dark image background."""
    rgba = table[index].astype(np.float64)
    back = np.array(QColor(IMAGE_BACKGROUND).getRgb()[:3], np.float64)
    a = rgba[..., 3:4] / 255.0
    rgb = np.ascontiguousarray(np.rint(rgba[..., :3] * a + back * (1 - a)).astype(np.uint8))
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(
        THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


class RegionBox(pg.ViewBox):
    """A view box in which, while ``drawing`` is on, a drag with the left button draws a rectangle on the
    photograph (``regionDrawn(top, left, bottom, right)`` in photograph pixels) instead of panning."""

    regionDrawn = Signal(object)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.01)
        self.drawing = False
        self.rect_item = QGraphicsRectItem()
        pen = QPen(QColor(ACCENT))
        pen.setWidth(2)
        pen.setCosmetic(True)
        self.rect_item.setPen(pen)
        self.rect_item.setBrush(QBrush(QColor(79, 163, 255, 40)))
        self.rect_item.setZValue(3)
        self.rect_item.hide()
        self.addItem(self.rect_item, ignoreBounds=True)

    def show_region(self, region: tuple[float, float, float, float] | None) -> None:
        if region is None:
            self.rect_item.hide()
            return
        top, left, bottom, right = region
        self.rect_item.setRect(QRectF(left, top, right - left, bottom - top).normalized())
        self.rect_item.show()

    def mouseDragEvent(self, ev, axis=None) -> None:
        if not self.drawing or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        a = self.mapToView(ev.buttonDownPos())
        b = self.mapToView(ev.pos())
        region = (min(a.y(), b.y()), min(a.x(), b.x()), max(a.y(), b.y()), max(a.x(), b.x()))
        self.show_region(region)
        if ev.isFinish():
            self.regionDrawn.emit(region)


class VesselColourBar(QWidget):
    """The vessel map's key: probability 0 to 1, hidden (grey) below the threshold, blue above."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.threshold = 0.5
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(240, 34)

    def set_threshold(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        fm = painter.fontMetrics()
        margin = fm.horizontalAdvance("0.00") // 2 + 4
        bar = QRectF(margin, 2, self.width() - 2 * margin, 12)
        table = vessel_lut(self.threshold)
        grad = QLinearGradient(bar.left(), 0, bar.right(), 0)
        hidden = QColor("#3a3f47")
        for i in range(0, 256, 5):
            c = table[i]
            grad.setColorAt(i / 255, QColor(*(int(v) for v in c[:3])) if c[3] else hidden)
        painter.fillRect(bar, grad)
        painter.setPen(QPen(QColor(MUTED)))
        painter.drawRect(bar)
        cut_text = f"{self.threshold:.2f}"
        cut_x = bar.left() + self.threshold * bar.width()
        cut_half = fm.horizontalAdvance(cut_text) / 2 + 4
        for value, colour in ((0.0, MUTED), (self.threshold, TEXT), (1.0, MUTED)):
            x = bar.left() + value * bar.width()
            painter.setPen(QPen(QColor(colour)))
            painter.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom()) + 3)
            text = cut_text if value == self.threshold else f"{value:.0f}"
            tw = fm.horizontalAdvance(text)
            if value != self.threshold and abs(x - cut_x) < cut_half + tw / 2:
                continue  # the threshold's own label is the one to read
            tx = min(max(x - tw / 2, 0), self.width() - tw)
            painter.drawText(int(tx), int(bar.bottom()) + 4 + fm.ascent(), text)
        painter.end()


class WeightSlider(QWidget):
    """One side output's weight, 0 to `WEIGHT_MAX` in steps of `WEIGHT_STEP`, with its value."""

    changed = Signal()

    def __init__(self, name: str, tip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLabel(name)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, round(WEIGHT_MAX / WEIGHT_STEP))
        self.slider.setPageStep(5)
        self.slider.setToolTip(tip)
        self.name.setToolTip(tip)
        self.value = QLabel()
        self.value.setObjectName("value")
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.name)
        row.addWidget(self.slider, 1)
        row.addWidget(self.value)
        self.slider.valueChanged.connect(self._moved)
        self.set_weight(1.0)

    def weight(self) -> float:
        return round(self.slider.value() * WEIGHT_STEP, 1)

    def set_weight(self, w: float) -> None:
        self.slider.setValue(round(w / WEIGHT_STEP))
        self._show()

    def _show(self) -> None:
        self.value.setText(f"× {self.weight():.1f}")

    def _moved(self, _value: int) -> None:
        self._show()
        self.changed.emit()


class VesselsPanel(QWidget):
    """The Vessels window: give it the engine and, with `set_image`, the photograph to show.

    ``resultShown(result)``: a `SegmentResult` for the current image is on screen. ``failedShown(message)``:
    the engine could not segment it (the message is shown in the panel).
    """

    resultShown = Signal(object)
    failedShown = Signal(str)

    def __init__(self, engine, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("retinaview · Vessels")
        self.engine = engine
        self.image: Path | None = None
        self.result: SegmentResult | None = None
        self.region: tuple[float, float, float, float] | None = None
        self.selected: str | None = None
        self.threshold = 0.5
        self._threshold_touched = False
        self._throttle = QTimer(self, singleShot=True, interval=THROTTLE_MS)
        self._throttle.timeout.connect(self.refresh)

        # Left: the photograph with the vessel map; right: the enlarged Grad-CAM map, zoom linked.
        self.views = pg.GraphicsLayoutWidget()
        self.views.setBackground(IMAGE_BACKGROUND)
        self.views.ci.setContentsMargins(6, 4, 6, 6)
        self.map_title = Title(justify="left", color=TEXT, size="11pt")
        self.cam_title = Title(justify="left", color=TEXT, size="11pt")
        self.box = RegionBox()
        self.cam_box = pg.ViewBox(
            lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.01
        )
        link_views([self.box, self.cam_box])
        self.views.ci.addItem(self.map_title, row=0, col=0)
        self.views.ci.addItem(self.cam_title, row=0, col=1)
        self.views.ci.addItem(self.box, row=1, col=0)
        self.views.ci.addItem(self.cam_box, row=1, col=1)
        self.views.ci.layout.setRowStretchFactor(1, 1)
        self.photo = pg.ImageItem()
        self.vessels = pg.ImageItem(levels=(0, 255))
        self.vessels.setZValue(1)
        self.cam_photo = pg.ImageItem()
        self.cam = pg.ImageItem(levels=(0, 255))
        self.cam.setZValue(1)
        self.box.addItem(self.photo)
        self.box.addItem(self.vessels)
        self.cam_box.addItem(self.cam_photo)
        self.cam_box.addItem(self.cam)
        self.box.regionDrawn.connect(self.set_region)
        # The region drawn on the photograph, shown on the enlarged map too.
        self.cam_rect = QGraphicsRectItem()
        self.cam_rect.setPen(self.box.rect_item.pen())
        self.cam_rect.setZValue(3)
        self.cam_rect.hide()
        self.cam_box.addItem(self.cam_rect, ignoreBounds=True)

        # The Grad-CAM strip, input to output; a click enlarges a layer on the right.
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(4, 4, 4, 4)
        self.strip_layout.setSpacing(4)
        self.strip_layout.addStretch(1)
        self.strip_buttons: dict[str, QToolButton] = {}
        self.strip.setStyleSheet(STRIP_STYLE)
        strip_scroll = QScrollArea()
        strip_scroll.setWidget(self.strip)
        strip_scroll.setWidgetResizable(True)
        strip_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        strip_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.strip_scroll = strip_scroll
        self.thumb = THUMB
        self._size_strip()

        self.message = QLabel("Open an image in the main window")
        self.message.setObjectName("muted")
        self.message.setWordWrap(True)

        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.setSpacing(2)
        centre_layout.addWidget(self.views, 1)
        strip_title = QLabel("Grad-CAM at every layer, input to output (click one to enlarge it)")
        strip_title.setObjectName("muted")
        strip_title.setContentsMargins(8, 2, 8, 0)
        self.message.setContentsMargins(8, 0, 8, 4)
        centre_layout.addWidget(strip_title)
        centre_layout.addWidget(strip_scroll)
        centre_layout.addWidget(self.message)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(self._build_side())
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.resize(1280, 800)
        self._apply_lut()
        engine.viewResultReady.connect(self._on_result)
        engine.viewFailed.connect(self._on_failed)
        engine.vesselModelLoaded.connect(self._on_model_loaded)
        engine.vesselModelFailed.connect(self._on_model_failed)

    def _build_side(self) -> QWidget:
        side = QWidget()
        side.setObjectName("panel")
        lay = QVBoxLayout(side)
        lay.setContentsMargins(8, 4, 10, 8)
        lay.setSpacing(6)

        vessel_box = QGroupBox("Vessel map")
        form = QFormLayout(vessel_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setToolTip("Show the pixels whose vessel probability is above this")
        self.threshold_value = QLabel()
        self.threshold_value.setObjectName("value")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(80)
        self.opacity_value = QLabel()
        self.opacity_value.setObjectName("value")
        self.show_map = QCheckBox("Show the vessel map")
        self.show_map.setChecked(True)
        self.colour_bar = VesselColourBar()
        form.addRow("Threshold", _row(self.threshold_slider, self.threshold_value))
        form.addRow("Opacity", _row(self.opacity_slider, self.opacity_value))
        form.addRow("", self.show_map)
        form.addRow("Probability", self.colour_bar)
        lay.addWidget(vessel_box)

        weights_box = QGroupBox("Side-output weights")
        wl = QVBoxLayout(weights_box)
        self.weight_sliders = [
            WeightSlider(name, tip) for name, tip in zip(BRANCHES, BRANCH_TIPS, strict=True)
        ]
        width = max(s.name.sizeHint().width() for s in self.weight_sliders)
        for s in self.weight_sliders:
            s.name.setFixedWidth(width)
            s.changed.connect(self.schedule)
            wl.addWidget(s)
        self.reset_weights = QPushButton("All × 1.0 (the trained network)")
        self.reset_weights.setToolTip(
            "Set the four weights back to 1: the network as it was trained"
        )
        self.reset_weights.clicked.connect(self.reset)
        wl.addWidget(self.reset_weights)
        lay.addWidget(weights_box)

        figures_box = QGroupBox("Against the vessel mask")
        fl = QVBoxLayout(figures_box)
        self.figures = QLabel("No image yet")
        self.figures.setWordWrap(True)
        self.figures.setTextFormat(Qt.TextFormat.RichText)
        fl.addWidget(self.figures)
        lay.addWidget(figures_box)

        cam_box = QGroupBox("Grad-CAM target")
        cl = QGridLayout(cam_box)
        self.region_button = QPushButton("Draw a region")
        self.region_button.setCheckable(True)
        self.region_button.setToolTip(
            "Drag a rectangle on the photograph: Grad-CAM then explains the summed vessel logit inside it"
        )
        self.clear_region = QPushButton("Whole image")
        self.clear_region.setToolTip("Grad-CAM of the summed vessel logit of the whole image")
        self.signed = QCheckBox("Signed maps (for and against)")
        self.signed.setToolTip(
            "Keep negative contributions (no ReLU): the diverging colours show for and against"
        )
        self.target_text = QLabel()
        self.target_text.setObjectName("muted")
        self.target_text.setWordWrap(True)
        self.cam_colours = QLabel()
        self.cam_colours.setObjectName("muted")
        self.cam_colours.setWordWrap(True)
        self.cam_colours.setTextFormat(Qt.TextFormat.RichText)
        cl.addWidget(self.region_button, 0, 0)
        cl.addWidget(self.clear_region, 0, 1)
        cl.addWidget(self.signed, 1, 0, 1, 2)
        cl.addWidget(self.target_text, 2, 0, 1, 2)
        cl.addWidget(self.cam_colours, 3, 0, 1, 2)
        lay.addWidget(cam_box)
        self.open_model = QPushButton("Open Vessel Model…")
        self.open_model.setToolTip(
            "A DRIU checkpoint (retinaview train --task vessels); the grader stays loaded"
        )
        self.open_model.clicked.connect(self.choose_model)
        lay.addWidget(self.open_model)
        lay.addStretch(1)

        self.threshold_slider.valueChanged.connect(self._threshold_moved)
        self.opacity_slider.valueChanged.connect(self._apply_layer)
        self.show_map.toggled.connect(self._apply_layer)
        self.region_button.toggled.connect(self._drawing)
        self.clear_region.clicked.connect(lambda: self.set_region(None))
        self.signed.toggled.connect(self.schedule)
        self._set_threshold(self.threshold)
        self._apply_layer()
        self._show_target()
        self._show_colours(False)

        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(380)
        return scroll

    # --- what to segment ---------------------------------------------------------------------------
    def weights(self) -> list[float]:
        return [s.weight() for s in self.weight_sliders]

    def params(self) -> dict:
        """The request's parameters as the controls say (part of the engine's cache key)."""
        return {
            "branch_weights": self.weights(),
            "gradcam": True,
            "region": None if self.region is None else [round(v, 1) for v in self.region],
            "signed": self.signed.isChecked(),
        }

    @Slot(object)
    def set_image(self, path) -> None:
        """Show the photograph at ``path`` (asked for only while the panel is visible)."""
        path = None if path is None else Path(path)
        if path != self.image:
            self.region = None
            self.box.show_region(None)
            self.cam_rect.hide()
            self._show_target()
        self.image = path
        if self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.image is not None and (self.result is None or self._stale()):
            self.refresh()

    def _stale(self) -> bool:
        r = self.result
        return r is None or r.request.path != self.image or r.request.params != self.params()

    @Slot()
    def schedule(self, *_) -> None:
        """Ask again after at most `THROTTLE_MS` (slider drags send one request per interval)."""
        if not self._throttle.isActive():
            self._throttle.start()

    @Slot()
    def refresh(self) -> None:
        """Ask the engine now for the current image with the current controls."""
        self._throttle.stop()
        if self.image is None:
            return
        self.message.setText(f"Segmenting {self.image.name}…")
        self.engine.segment(self.image, self.params(), view=VESSELS_VIEW)

    @Slot()
    def reset(self) -> None:
        for s in self.weight_sliders:
            s.blockSignals(True)
            s.set_weight(1.0)
            s.blockSignals(False)
        self.schedule()

    def set_weights(self, weights) -> None:
        """Set the four side-output weights as if the sliders had been moved."""
        for s, w in zip(self.weight_sliders, weights, strict=True):
            s.set_weight(float(w))

    @Slot(object)
    def set_region(self, region) -> None:
        """The Grad-CAM target: the summed vessel logit inside ``region`` (top, left, bottom, right in
        photograph pixels), or of the whole image for None."""
        self.region = None if region is None else tuple(float(v) for v in region)
        self.box.show_region(self.region)
        self.cam_rect.setRect(self.box.rect_item.rect())
        self.cam_rect.setVisible(self.region is not None)
        self.region_button.setChecked(False)
        self._show_target()
        self.schedule()

    def _drawing(self, on: bool) -> None:
        self.box.drawing = on
        self._show_target()

    def _show_target(self) -> None:
        if self.region_button.isChecked():
            text = "Drag a rectangle on the photograph (left view)."
        elif self.region is None:
            text = "Target: the summed vessel logit of the whole image."
        else:
            t, left, b, r = self.region
            text = (
                f"Target: the summed vessel logit inside the rectangle "
                f"{r - left:.0f} × {b - t:.0f} px at ({left:.0f}, {t:.0f})."
            )
        self.target_text.setText(text)

    # --- drawing -----------------------------------------------------------------------------------
    @Slot(str, object)
    def _on_result(self, view: str, result) -> None:
        if view != VESSELS_VIEW or not isinstance(result, SegmentResult):
            return
        if self.image is None or result.request.path != self.image:
            return
        fresh = self.result is None or self.result.photo.shape != result.photo.shape
        same_photo = self.result is not None and self.result.digest == result.digest
        self.result = result
        if not same_photo:
            self.photo.setImage(result.photo, autoLevels=False)
            self.cam_photo.setImage(result.photo, autoLevels=False)
        if not self._threshold_touched:
            self._set_threshold(result.threshold)
        transform = _transform(result.to_photo)
        self.vessels.setImage(
            probability_index(result.probability, result.fov), levels=(0, 255), autoLevels=False
        )
        self.vessels.setTransform(transform)
        self.cam.setTransform(transform)
        self._apply_lut()
        self._apply_layer()
        self._fill_strip(result)
        self._show_figures(result)
        w = ", ".join(f"{v:.1f}" for v in result.request.params.get("branch_weights", UNIT_WEIGHTS))
        self.map_title.setText(
            f"{result.request.label} · vessel probability "
            f"<span style='color:{MUTED}'>(weights {w})</span>"
        )
        how = "from the cache" if result.cached else f"in {result.seconds:.2f} s"
        self.message.setText(f"{Path(result.model.source).name} · {result.model.device} · {how}")
        if fresh or not same_photo:
            self.box.autoRange(padding=0.01)
        self.resultShown.emit(result)

    @Slot()
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a vessel model", "", "Checkpoints (*.pt *.pth);;All files (*)"
        )
        if path:
            self.load_model(path)

    def load_model(self, path: str) -> None:
        """Load ``path`` as the engine's vessel model; the panel asks again when it has loaded."""
        self.message.setText(f"Loading {Path(path).name}…")
        self.engine.load_vessel_model(path)

    @Slot(object)
    def _on_model_loaded(self, info) -> None:
        if self.isVisible() and self.image is not None:
            self.refresh()

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self.message.setText(f"⚠  {message}")
        self.failedShown.emit(message)

    @Slot(str, str, object)
    def _on_failed(self, view: str, message: str, path) -> None:
        if view != VESSELS_VIEW:
            return
        self.message.setText(f"⚠  {message}")
        self.failedShown.emit(message)

    def _fill_strip(self, result: SegmentResult) -> None:
        signed = bool(result.request.params.get("signed", False))
        table = cam_lut(signed)
        names = list(result.gradcams)
        if list(self.strip_buttons) != names:
            for b in self.strip_buttons.values():
                self.strip_layout.removeWidget(b)
                b.deleteLater()
            self.strip_buttons = {}
            for k, name in enumerate(names):
                b = QToolButton()
                b.setText(_layer_label(name))
                b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
                b.setIconSize(QSize(self.thumb, self.thumb))
                b.setCheckable(True)
                b.setAutoExclusive(True)
                b.setToolTip(f"Grad-CAM at {_layer_tip(name)}")
                b.clicked.connect(lambda _=False, n=name: self.enlarge(n))
                self.strip_layout.insertWidget(k, b)
                self.strip_buttons[name] = b
        # Pictures from every step-th pixel: fourteen maps at 512 px would otherwise colour 3.7 M pixels
        # on this thread for pictures of at most THUMB px.
        step = max(1, result.fov.shape[0] // THUMB)
        fov = result.fov[::step, ::step]
        for name, cam in result.gradcams.items():
            index = cam_index(cam[::step, ::step], signed, fov)
            self.strip_buttons[name].setIcon(QIcon(_thumbnail(index, table)))
        self._size_strip()
        if self.selected not in result.gradcams:
            self.selected = names[-1] if names else None
        if self.selected is not None:
            self.enlarge(self.selected)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._size_strip()

    def _size_strip(self) -> None:
        """Pictures as large as the strip's width allows for all layers at once (scrolling below
        `THUMB_MIN`), and the strip as high as its pictures."""
        n = max(len(self.strip_buttons), 14)
        room = self.strip_scroll.viewport().width() - 8
        # A tool button is its picture plus its padding and border (`STRIP_STYLE`) and the spacing.
        side = int(min(THUMB, max(THUMB_MIN, room / n - 4 - 10)))
        self.thumb = side
        for b in self.strip_buttons.values():
            b.setIconSize(QSize(side, side))
        self.strip_scroll.setFixedHeight(side + 52)

    @Slot(str)
    def enlarge(self, name: str) -> None:
        """Show layer ``name``'s Grad-CAM map large, on the photograph, beside the vessel map."""
        result = self.result
        if result is None or name not in result.gradcams:
            return
        self.selected = name
        self.strip_buttons[name].setChecked(True)
        signed = bool(result.request.params.get("signed", False))
        cam = result.gradcams[name]
        self.cam.setImage(cam_index(cam, signed, result.fov), levels=(0, 255), autoLevels=False)
        self.cam.setLookupTable(cam_lut(signed))
        kind = "signed" if signed else "ReLU"
        self.cam_title.setText(
            f"Grad-CAM · {_layer_label(name)} <span style='color:{MUTED}'>({kind})</span>"
        )
        self._show_colours(signed)

    def _show_colours(self, signed: bool) -> None:
        if signed:
            pal = palette(DEFAULT_PALETTE)
            text = (
                f"<span style='color:rgb{pal.pos}'>■</span> {pal.pos_word}: raises the target; "
                f"<span style='color:rgb{pal.neg}'>■</span> {pal.neg_word}: lowers it"
            )
        else:
            text = "Brighter: raises the target more (negative parts cut by ReLU)"
        self.cam_colours.setText(text)

    def _show_figures(self, result: SegmentResult) -> None:
        s = result.scores
        if s is None:
            self.figures.setText(
                f"<span style='color:{MUTED}'>No vessel mask beside this image "
                f"(<i>name</i>_vessels.png, or groundtruth/<i>name</i>.npz).</span>"
            )
            return
        self.figures.setText(
            f"<b>mIoU {s['miou']:.3f}</b> &nbsp; <b>F1 {s['f1']:.3f}</b><br>"
            f"<span style='color:{MUTED}'>inside the field of view, at the model's threshold "
            f"{result.threshold:.2f}, against {result.mask}</span>"
        )

    def _threshold_moved(self, value: int) -> None:
        self._threshold_touched = True
        self.threshold = value / 100
        self.threshold_value.setText(f"{self.threshold:.2f}")
        self.colour_bar.set_threshold(self.threshold)
        self._apply_lut()

    def _set_threshold(self, t: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(t * 100))
        self.threshold_slider.blockSignals(False)
        self.threshold = self.threshold_slider.value() / 100
        self.threshold_value.setText(f"{self.threshold:.2f}")
        self.colour_bar.set_threshold(self.threshold)
        self._apply_lut()

    def _apply_lut(self) -> None:
        self.vessels.setLookupTable(vessel_lut(self.threshold))

    def _apply_layer(self, *_) -> None:
        self.opacity_value.setText(f"{self.opacity_slider.value()} %")
        self.vessels.setOpacity(self.opacity_slider.value() / 100)
        self.vessels.setVisible(self.show_map.isChecked())


def _layer_label(name: str) -> str:
    """A short caption: ``stage3.relu3_2`` -> ``conv3_2``; ``side2`` -> ``side 2``."""
    if name.startswith("side"):
        return f"side {name[4:]}"
    return name.split(".")[-1].replace("relu", "conv")


def _layer_tip(name: str) -> str:
    if name.startswith("side"):
        k = int(name[4:]) - 1
        return f"side output {k + 1} ({BRANCHES[k]}): {BRANCH_TIPS[k]}"
    return f"{_layer_label(name)} (the ReLU after it, {name})"


def _row(*widgets) -> QHBoxLayout:
    box = QHBoxLayout()
    box.setSpacing(8)
    for k, w in enumerate(widgets):
        box.addWidget(w, 1 if k == 0 else 0)
    return box


class VesselUnderlay(QObject):
    """Lays the vessel map of the current image under the grader's maps in an `OverlayView`.

    While on, every new image is segmented in the engine (view ``UNDERLAY_VIEW``, the trained network's
    weights) and its probability above the model's threshold drawn under the class map.
    """

    failed = Signal(str)

    def __init__(self, engine, viewer, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.viewer = viewer
        self.on = False
        self.image: Path | None = None
        self.result: SegmentResult | None = None
        engine.viewResultReady.connect(self._on_result)
        engine.viewFailed.connect(self._on_failed)

    @Slot(str, str, object)
    def _on_failed(self, view: str, message: str, path) -> None:
        if view == UNDERLAY_VIEW and self.on:
            self.failed.emit(f"Vessels under the maps: {message}")

    @Slot(bool)
    def set_enabled(self, on: bool) -> None:
        self.on = bool(on)
        if not self.on:
            self.viewer.set_underlay(None)
        elif self.image is not None:
            self.engine.segment(self.image, {}, view=UNDERLAY_VIEW)

    @Slot(object)
    def set_image(self, path) -> None:
        path = None if path is None else Path(path)
        if path != self.image:
            self.viewer.set_underlay(None)
        self.image = path
        if self.on and path is not None:
            self.engine.segment(path, {}, view=UNDERLAY_VIEW)

    @Slot(str, object)
    def _on_result(self, view: str, result) -> None:
        if view != UNDERLAY_VIEW or not self.on or result.request.path != self.image:
            return
        self.result = result
        index = probability_index(result.probability, result.fov)
        table = vessel_lut(result.threshold, UNDERLAY_ALPHA, UNDERLAY_DARK, UNDERLAY_LIGHT)
        self.viewer.set_underlay(index, result.to_photo, table)


class VesselsMenu(QObject):
    """The main window's two vessel actions: open the panel, lay the vessel map under the maps."""

    def __init__(self, engine, viewer, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.engine = engine
        self.panel: VesselsPanel | None = None
        self.underlay = VesselUnderlay(engine, viewer, self)
        self.image: Path | None = None
        notice = getattr(parent, "show_notice", None)
        if notice is not None:
            self.underlay.failed.connect(notice)
        # The panel is a window of its own: it goes when the main window goes (closed, not minimised).
        parent.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Hide and self.panel is not None:
            if not watched.isMinimized():
                self.panel.close()
        return False

    @Slot(object)
    def set_image(self, path) -> None:
        self.image = None if path is None else Path(path)
        self.underlay.set_image(path)
        if self.panel is not None:
            self.panel.set_image(path)

    @Slot()
    def show_panel(self, *_) -> VesselsPanel:
        if self.panel is None:
            self.panel = VesselsPanel(self.engine, self._window)
            self.panel.set_image(self.image)
        self.panel.show()
        self.panel.raise_()
        return self.panel

    @Slot(bool)
    def set_underlay(self, on: bool) -> None:
        self.underlay.set_enabled(on)
