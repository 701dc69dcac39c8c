"""The public API and the `explain` / `layers` commands on the real fundus photograph."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

import retinaview
from retinaview.cli import main


@pytest.fixture(scope="module")
def model():
    return retinaview.load_model("paper17")


@pytest.fixture(scope="module")
def photo():
    return data.retina()  # a real CC0 fundus photograph, 1411 x 1411


@pytest.fixture(scope="module")
def result(model, photo):
    return retinaview.explain(model, photo)


def test_explanation_shapes_and_conservation(result, model):
    c, h, w = 5, 640, 640
    assert result.logits.shape == (c,)
    assert result.probs.sum() == pytest.approx(1.0)
    assert result.input.shape == result.total.shape == (c, h, w)
    assert result.fov.shape == (h, w) and result.fov.dtype == bool
    assert 0.6 < result.fov.mean() < 0.85  # a disc filling the square: pi/4
    assert [layer.name for layer in result.layers] == list(model.spec.explained_layers)
    assert result.layers[-1].si.shape == (c, 4, 4)
    assert result.features.shape == (c, 64)
    # The total input-space map of every class sums to its logit.
    scale = np.abs(result.input).sum((1, 2)) + sum(
        np.abs(lay.sk).sum((1, 2)) for lay in result.layers
    )
    err = np.abs(result.total.astype(np.float64).sum((1, 2)) - result.logits) / scale
    assert err.max() < 1e-5
    assert result.residual() < 1e-6
    assert result.display.shape == (h, w, 3) and result.display.dtype == np.uint8


def test_inputs_path_pil_array_agree(model, photo, result, tmp_path):
    path = tmp_path / "retina.png"
    Image.fromarray(photo).save(path)
    from_path = retinaview.explain(model, path, map_to_input_space=False)
    np.testing.assert_allclose(from_path.logits, result.logits, rtol=1e-5, atol=1e-6)
    from_pil = retinaview.explain(model, Image.fromarray(photo), classes="predicted")
    assert np.isfinite(from_pil.input[from_pil.grade]).all()
    others = [c for c in range(5) if c != from_pil.grade]
    assert np.isnan(from_pil.input[others]).all()


def test_geometry_maps_back_to_the_photograph(result, photo):
    back = result.geometry.to_photo(result.total[result.grade])
    assert back.shape == photo.shape[:2]


def test_cli_explain_writes_npz_png_and_json(tmp_path, capsys, photo):
    img = tmp_path / "eye.png"
    Image.fromarray(photo[::2, ::2]).save(img)
    code = main(
        ["explain", str(img), "--model", "paper17", "--out", str(tmp_path / "out"), "--json"]
    )
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"file", "grade", "probs", "logits", "residual", "seconds"} <= set(line)
    assert line["residual"] < 1e-6
    npz = np.load(tmp_path / "out" / "eye.npz")
    assert npz["layers"].shape == (15,)
    for key in (
        "logits",
        "probs",
        "bias",
        "input",
        "total",
        "fov",
        "features",
        "si_14",
        "sk_0",
        "rf_3",
    ):
        assert key in npz
    assert int(npz["rf_14"]) == 764 and int(npz["jump_14"]) == 128
    # sum(si_k) + sum over j > k of sum(sk_j) + bias = logits, for every k.
    sk = [npz[f"sk_{j}"].sum((1, 2)) for j in range(15)]
    for k in range(15):
        parts = npz[f"si_{k}"].sum((1, 2)) + sum(sk[k + 1 :], np.zeros(5)) + npz["bias"]
        np.testing.assert_allclose(parts, npz["logits"], rtol=1e-4, atol=1e-4)
    assert (tmp_path / "out" / f"eye_c{line['grade']}.png").exists()


def test_cli_bad_image_exit_2_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    code = main(["explain", str(bad), "--model", "paper17", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert any("broken.png" in line for line in err)
    assert not any("Traceback" in line for line in err)


def test_cli_bad_model_exit_2(tmp_path, capsys):
    code = main(["explain", "x.png", "--model", str(tmp_path / "missing.pt")])
    assert code == 2
    assert "missing.pt" in capsys.readouterr().err


def test_cli_layers_table(capsys):
    assert main(["layers", "--model", "paper17"]) == 0
    out = capsys.readouterr().out
    assert "body.layer15" in out and "764" in out and "637" in out


def test_partial_results_come_predicted_class_first(model, photo, result):
    partials = []
    final = retinaview.explain(model, photo, on_partial=partials.append)
    # After each class but the last: the final result is the return value.
    assert [len(p.classes) for p in partials] == [1, 2, 3, 4]
    first = partials[0]
    assert np.isfinite(first.total[final.grade]).all()
    assert np.isnan(first.total[[c for c in range(5) if c != final.grade]]).all()
    assert first.geometry is not None and first.fov.shape == (640, 640)
    np.testing.assert_allclose(first.total[final.grade], final.total[final.grade])
    np.testing.assert_allclose(final.total, result.total, rtol=1e-5, atol=1e-7)
