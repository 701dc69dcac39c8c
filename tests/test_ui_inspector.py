"""The layer inspector with the numpy stand-in backend: maps, table, waterfall, receptive fields, exports."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt

from retinaview.engine import layers as L
from retinaview.engine.worker import Engine
from retinaview.ui.main_window import MainWindow
from tests.fake_backend import FAKE_LAYERS, FakeBackend, fake_explanation

SIZE = 96


@pytest.fixture
def folder(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:200]
    for k in range(2):
        img = np.zeros((160, 200, 3), np.uint8)
        img[..., 0] = 120 + 60 * np.sin(xx / (9 + k))
        img[..., 1] = 60 + 40 * np.cos(yy / 7)
        img[..., 2] = rng.integers(0, 60, (160, 200))
        Image.fromarray(img).save(tmp_path / f"eye{k}.png")
    return tmp_path


@pytest.fixture
def window(qtbot, folder):
    engine = Engine(FakeBackend(input_size=SIZE))
    win = MainWindow(engine, restore=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
        engine.start()
    win.inspector_action.setChecked(True)
    inspector = win._inspector
    with qtbot.waitSignal(inspector.layerShown, timeout=20_000):
        assert win.open_path(folder)
    yield win
    win.close()


def _show(qtbot, inspector, number: int) -> None:
    with qtbot.waitSignal(
        inspector.layerShown, timeout=10_000, check_params_cb=lambda n: n == number
    ):
        inspector.set_layer(number)
    assert inspector.ready()


def _close(a, b, scale) -> bool:
    return np.allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_fake_explanation_conserves_at_every_cut():
    img = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    ex = fake_explanation(img, (64, 64))
    assert len(ex.layers) == len(FAKE_LAYERS)
    for row in L.layer_rows(ex):
        # float32 input map: conservation to float32 precision.
        assert np.abs(row.residual).max() < 1e-6 * np.abs(row.si_sum).max()
    assert np.allclose(ex.feature_maps.sum((2, 3)), ex.features)
    assert np.allclose(ex.total.reshape(5, -1).sum(1), ex.logits, atol=1e-3)


def test_each_layer_shows_five_maps_whose_sums_match_the_table(qtbot, window):
    inspector = window._inspector
    ex = inspector.ex
    rows = {r.number: r for r in inspector.table.rows}
    assert sorted(rows) == L.layer_numbers(ex)
    scale = max(np.abs(r.si_sum).max() for r in rows.values())
    for space in ("input", "hidden"):
        inspector.set_space(space)
        for number in L.layer_numbers(ex):
            _show(qtbot, inspector, number)
            si, sk = inspector.shown_sums()
            drawn = [pane for pane in inspector.panes[0] if pane.overlay.image is not None]
            assert len(drawn) == 5
            want = rows[number].si_sum
            if number == L.feature_number(ex):
                # One feature at a time: its column of the feature scores (the chart's bar).
                want = ex.features[:, inspector.feature]
            assert _close(si, want, scale), (space, number)
            if 1 <= number <= len(ex.layers):
                assert _close(sk, rows[number].sk_sum, scale), (space, number)
                assert all(pane.overlay.image is not None for pane in inspector.panes[1])
            shape = drawn[0].overlay.image.shape
            expected = ex.input.shape[-2:]
            if space == "hidden" and number > 0:
                expected = ex.layers[min(number, len(ex.layers)) - 1].si.shape[-2:]
            assert shape == tuple(expected)
    # The table's layer rows follow the layers' geometry.
    for k, layer in enumerate(ex.layers, start=1):
        assert (rows[k].rf, rows[k].jump) == (layer.rf, layer.jump)


def test_threshold_follows_the_overlay_viewer(qtbot, window):
    inspector = window._inspector
    _show(qtbot, inspector, 1)
    pane = inspector.panes[0][0]
    low = (pane.overlay.lut[:, 3] > 0).sum()
    window.controls.threshold.setValue(40)
    assert inspector.state.threshold == pytest.approx(4.0)
    assert (pane.overlay.lut[:, 3] > 0).sum() < low


def test_waterfall_parts_add_up_to_the_logit_of_the_viewer(qtbot, window):
    inspector = window._inspector
    logits = window.viewer.result.explanation.logits
    data = inspector.waterfall.data
    assert data.labels == ("input", *(str(k + 1) for k in range(len(FAKE_LAYERS))), "bias")
    for c in range(5):
        parts = inspector.waterfall.parts(c)
        scale = np.abs(parts).sum()
        assert abs(parts.sum() - logits[c]) < 1e-6 * scale
        assert parts.sum() + data.residual[c] == pytest.approx(logits[c])
    # The waterfall and the table follow the viewer's class.
    window.controls.change(cls=3)
    assert inspector.waterfall.cls == 3


def test_clicking_a_hidden_unit_outlines_its_receptive_field(qtbot, window):
    inspector = window._inspector
    inspector.set_space("hidden")
    number = 3
    _show(qtbot, inspector, number)
    rf = inspector.table.row_of(number).rf
    result = inspector.result
    a_y, _b_y, a_x, _b_x = result.to_photo
    # A click in the middle of the first map.
    pane = inspector.panes[0][0]
    h, w = result.photo.shape[:2]
    scene = pane.box.mapViewToScene(QPointF(w / 2, h / 2))
    pos = inspector.grid.mapFromScene(scene)
    with qtbot.waitSignal(inspector.unitPicked, timeout=5_000) as blocker:
        qtbot.mouseClick(inspector.grid.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    assert blocker.args[0] == number
    rect = inspector.unit_rect()
    assert rect is not None
    assert rect.width() == pytest.approx(rf * a_x)
    assert rect.height() == pytest.approx(rf * a_y)
    # The rectangle is centred on the unit's centre.
    i, j = blocker.args[1:]
    _rf, jump, (oy, ox) = L.geometry(inspector.ex, number)
    assert rect.center().x() == pytest.approx(a_x * (ox + jump * j) + _b_x + 0.5)
    assert inspector.priors[0].isVisible()
    # The value under the cursor names the unit and its score.
    text = inspector.describe(0, 0, oy + jump * i, ox + jump * j)
    assert f"unit ({i}, {j})" in text


def test_feature_bar_shows_that_features_map(qtbot, window):
    inspector = window._inspector
    ex = inspector.ex
    number = L.feature_number(ex)
    with qtbot.waitSignal(
        inspector.layerShown, timeout=10_000, check_params_cb=lambda n: n == number
    ):
        inspector.features.click_feature(5)
    si, _ = inspector.shown_sums()
    assert inspector.feature == 5
    assert _close(si, ex.features[:, 5], np.abs(ex.features).max())


def test_walk_through_goes_from_the_output_to_the_input(qtbot, window):
    inspector = window._inspector
    shown: list[int] = []
    inspector.layerShown.connect(shown.append)
    inspector.walk_timer.setInterval(5)
    inspector.play(True)
    qtbot.waitUntil(lambda: not inspector.walk_timer.isActive(), timeout=20_000)
    order = L.walk_order(inspector.ex)
    assert [n for k, n in enumerate(shown) if k == 0 or shown[k - 1] != n] == order
    assert not inspector.play_button.isChecked()


def test_exports_open(qtbot, window, tmp_path):
    inspector = window._inspector
    ex = inspector.ex
    for method, name in (
        (inspector.export_gif, "walk.gif"),
        (inspector.export_sheet, "sheet.png"),
        (inspector.export_csv, "layers.csv"),
    ):
        with qtbot.waitSignal(inspector.exportDone, timeout=30_000) as blocker:
            assert method(tmp_path / name)
        assert blocker.args == [tmp_path / name, None]
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == len(ex.layers) + 1
    with Image.open(tmp_path / "sheet.png") as sheet:
        sheet.load()
        assert sheet.width > sheet.height / 2
    with open(tmp_path / "layers.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(L.layer_rows(ex))
    assert [int(r["number"]) for r in rows] == L.layer_numbers(ex)
    assert float(rows[1]["sum_sk_c0"]) == pytest.approx(float(ex.layers[0].sk[0].sum()), rel=1e-4)


def test_view_command_inspector_screenshot(tmp_path, folder):
    from tests.helpers_models import small_checkpoint

    out = tmp_path / "insp.png"
    model = small_checkpoint(tmp_path / "model" / "small.pt")
    cmd = [sys.executable, "-m", "retinaview.cli", "view", str(folder), "--model", str(model)]
    cmd += ["--panel", "inspector", "--layer", "2", "--size", "1200x800", "--screenshot", str(out)]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    with Image.open(out) as img:
        assert img.size == (1200, 800)
