"""The Vessels panel and the vessel underlay, through the real engine with a small DRIU checkpoint (64 px):
results arrive, the side-output sliders change the map, the figures show for an image with a vessel mask,
the threshold moves only a lookup table, the text fits at the usual screen sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from retinaview.engine.backend import TorchBackend
from retinaview.engine.requests import SegmentResult
from retinaview.engine.worker import Engine
from retinaview.ui.vessels_panel import VesselsPanel, cam_index, probability_index, vessel_lut
from tests.helpers_models import small_checkpoint
from tests.test_engine_vessels import driu_checkpoint
from tests.ui_layout import SCREEN_SIZES, text_problems

torch.set_num_threads(1)
PHOTO = 96


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    return driu_checkpoint(folder / "driu.pt"), small_checkpoint(folder / "grader.pt", 1, 64)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two synthetic photographs with their ground truth, and one photograph without any mask."""
    from retinaview.core.synthetic.writer import write_dataset

    out = tmp_path_factory.mktemp("photos")
    write_dataset(out, 2, seed=5, size=PHOTO)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (PHOTO, PHOTO, 3), dtype=np.uint8)).save(out / "zz.png")
    return out


def _synth(folder: Path) -> list[Path]:
    return sorted(folder.glob("synth_*.png"))


@pytest.fixture
def engine(qtbot, models):
    eng = Engine(TorchBackend(), model=str(models[1]))
    with qtbot.waitSignal(eng.modelLoaded, timeout=60_000):
        eng.start()
    # Waited for: a later vessel model asked for before this one starts would replace it (newest wins).
    with qtbot.waitSignal(eng.vesselModelLoaded, timeout=60_000):
        eng.load_vessel_model(str(models[0]))
    yield eng
    eng.close()


@pytest.fixture
def panel(qtbot, engine):
    p = VesselsPanel(engine)
    qtbot.addWidget(p)
    p.show()
    yield p
    p.close()


def _shown(qtbot, panel, action, check=None) -> SegmentResult:
    with qtbot.waitSignal(
        panel.resultShown, timeout=60_000, check_params_cb=check or (lambda r: True)
    ) as blocker:
        action()
    return blocker.args[0]


def test_map_strip_and_figures_arrive(qtbot, panel, folder):
    image = _synth(folder)[0]
    result = _shown(qtbot, panel, lambda: panel.set_image(image))
    assert result.request.path == image and result.model.arch == "driu"
    np.testing.assert_array_equal(
        panel.vessels.image, probability_index(result.probability, result.fov)
    )
    assert list(panel.strip_buttons) == list(result.gradcams) and len(result.gradcams) == 14
    assert "mIoU" in panel.figures.text() and f"{result.scores['miou']:.3f}" in panel.figures.text()
    assert f"{image.stem}.npz" in panel.figures.text()
    # The threshold starts at the model's own and moves only the lookup table.
    assert panel.threshold == pytest.approx(result.threshold, abs=0.01)
    drawn = panel.vessels.image
    panel.threshold_slider.setValue(80)
    assert panel.vessels.image is drawn
    np.testing.assert_array_equal(panel.vessels.lut, vessel_lut(0.80))
    panel.opacity_slider.setValue(40)
    assert panel.vessels.opacity() == pytest.approx(0.4)


def test_sliders_change_the_map_and_the_figures(qtbot, panel, folder):
    image = _synth(folder)[1]
    first = _shown(qtbot, panel, lambda: panel.set_image(image))
    target = [1.0, 1.0, 3.0, 0.0]
    moved = _shown(
        qtbot,
        panel,
        lambda: panel.set_weights(target),
        check=lambda r: r.request.params["branch_weights"] == target,
    )
    assert not np.array_equal(moved.probability, first.probability)
    assert not np.array_equal(panel.vessels.image, probability_index(first.probability, first.fov))
    assert f"{moved.scores['miou']:.3f}" in panel.figures.text()
    assert [s.weight() for s in panel.weight_sliders] == target
    assert panel.weight_sliders[2].value.text() == "× 3.0"
    back = _shown(
        qtbot,
        panel,
        panel.reset,
        check=lambda r: r.request.params["branch_weights"] == [1.0] * 4,
    )
    np.testing.assert_array_equal(back.probability, first.probability)


def test_strip_click_region_and_signed_maps(qtbot, panel, folder):
    image = _synth(folder)[0]
    result = _shown(qtbot, panel, lambda: panel.set_image(image))
    name = "stage2.relu2_2"
    qtbot.mouseClick(panel.strip_buttons[name], Qt.MouseButton.LeftButton)
    assert panel.selected == name
    np.testing.assert_array_equal(
        panel.cam.image, cam_index(result.gradcams[name], False, result.fov)
    )
    region = (20.0, 30.0, 60.0, 70.0)
    boxed = _shown(
        qtbot, panel, lambda: panel.set_region(region), check=lambda r: r.request.params["region"]
    )
    assert boxed.request.params["region"] == list(region)
    assert any(not np.array_equal(boxed.gradcams[n], cam) for n, cam in result.gradcams.items())
    assert "inside the rectangle" in panel.target_text.text()
    signed = _shown(
        qtbot,
        panel,
        lambda: panel.signed.setChecked(True),
        check=lambda r: r.request.params["signed"],
    )
    assert panel.selected == name
    np.testing.assert_array_equal(
        panel.cam.image, cam_index(signed.gradcams[name], True, signed.fov)
    )


class _Drag:
    """The parts of pyqtgraph's MouseDragEvent that `RegionBox` reads."""

    def __init__(self, box, a, b, finish):
        self._a, self._b, self._finish, self.accepted = (
            box.mapFromView(a),
            box.mapFromView(b),
            finish,
            False,
        )
        self._button = Qt.MouseButton.LeftButton

    def button(self):
        return self._button

    def buttonDownPos(self):
        return self._a

    def pos(self):
        return self._b

    def isFinish(self):
        return self._finish

    def accept(self):
        self.accepted = True


def test_dragging_with_the_region_tool_draws_the_region(qtbot, panel, folder):
    _shown(qtbot, panel, lambda: panel.set_image(_synth(folder)[0]))
    panel.region_button.setChecked(True)
    a, b = QPointF(70, 10), QPointF(20, 50)  # (x, y): dragged up and to the left
    panel.box.mouseDragEvent(_Drag(panel.box, a, b, finish=False))
    assert panel.region is None and panel.box.rect_item.isVisible()
    result = _shown(
        qtbot,
        panel,
        lambda: panel.box.mouseDragEvent(_Drag(panel.box, a, b, finish=True)),
        check=lambda r: r.request.params["region"] is not None,
    )
    top, left, bottom, right = result.request.params["region"]
    assert (top, left, bottom, right) == pytest.approx((10, 20, 50, 70), abs=0.2)
    assert not panel.region_button.isChecked()


def test_an_image_without_a_mask_says_so(qtbot, panel, folder):
    result = _shown(qtbot, panel, lambda: panel.set_image(folder / "zz.png"))
    assert result.scores is None
    assert "No vessel mask" in panel.figures.text()


@pytest.mark.parametrize("size", SCREEN_SIZES)
def test_text_fits(qtbot, panel, folder, size):
    _shown(qtbot, panel, lambda: panel.set_image(_synth(folder)[0]))
    panel.resize(*size)
    _shown(qtbot, panel, lambda: panel.set_region((10, 10, 50, 60)))
    qtbot.wait(50)
    problems = text_problems(panel)
    assert problems == [], "\n".join(problems)


def test_main_window_opens_the_panel_and_lays_vessels_under_the_maps(qtbot, models, folder):
    from retinaview.ui.main_window import MainWindow

    engine = Engine(TorchBackend(), model=str(models[1]))
    win = MainWindow(engine, restore=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=60_000):
        engine.start()
    engine.load_vessel_model(str(models[0]))
    image = _synth(folder)[0]
    with qtbot.waitSignal(win.resultShown, timeout=60_000):
        win.open_path(image)
    underlay = win.viewer.main_pane.underlay
    assert underlay.image is None
    with qtbot.waitSignal(engine.viewResultReady, timeout=60_000):
        win.actions["vessel_underlay"].trigger()
    assert underlay.image is not None and underlay.image.shape == (64, 64)
    assert (
        win.viewer.main_pane.overlay.zValue()
        > underlay.zValue()
        > win.viewer.main_pane.photo.zValue()
    )
    win.actions["vessel_underlay"].trigger()
    assert underlay.image is None
    win.actions["vessels_panel"].trigger()
    panel = win.vessels.panel
    assert panel is not None and panel.isVisible() and panel.image == image
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    win.close()
    assert not panel.isVisible()


def test_a_slider_drag_is_throttled(qtbot, panel, folder, monkeypatch):
    _shown(qtbot, panel, lambda: panel.set_image(_synth(folder)[0]))
    asked: list[dict] = []
    segment = panel.engine.segment
    monkeypatch.setattr(
        panel.engine,
        "segment",
        lambda image, params, view: asked.append(params) or segment(image, params, view),
    )
    for v in range(11, 31):  # a drag from 1.1 to 3.0 in twenty steps
        panel.weight_sliders[3].slider.setValue(v)
    assert asked == []
    result = _shown(
        qtbot, panel, lambda: None, check=lambda r: r.request.params["branch_weights"][3] == 3.0
    )
    assert len(asked) == 1 and asked[0]["branch_weights"] == [1.0, 1.0, 1.0, 3.0]
    assert result.request.params == asked[0]


def test_a_grader_opened_as_vessel_model_is_one_line_and_the_old_one_stays(
    qtbot, panel, models, folder
):
    _shown(qtbot, panel, lambda: panel.set_image(_synth(folder)[0]))
    with qtbot.waitSignal(panel.failedShown, timeout=60_000) as blocker:
        panel.load_model(str(models[1]))
    assert "not a vessel segmentation model" in blocker.args[0]
    assert "not a vessel segmentation model" in panel.message.text()
    # Opening the vessel model again asks for the current image again.
    result = _shown(qtbot, panel, lambda: panel.load_model(str(models[0])))
    assert result.model.arch == "driu"


def test_underlay_failure_is_a_notice(qtbot, models, folder):
    from retinaview.ui.main_window import MainWindow

    engine = Engine(TorchBackend(), model=str(models[1]))
    win = MainWindow(engine, restore=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=60_000):
        engine.start()
    with qtbot.waitSignal(engine.vesselModelFailed, timeout=60_000):
        engine.load_vessel_model(str(models[1]))  # a grader: refused
    with qtbot.waitSignal(win.resultShown, timeout=60_000):
        win.open_path(_synth(folder)[0])
    with qtbot.waitSignal(win.noticeShown, timeout=60_000) as blocker:
        win.actions["vessel_underlay"].trigger()
    assert blocker.args[0].startswith("Vessels under the maps:")
    assert "not a vessel segmentation model" in blocker.args[0]
    win.close()
