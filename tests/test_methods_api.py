"""Every registered explanation method through the method contract, the API's parameter checks and
`retinaview explain --method`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from retinaview.cli import main
from retinaview.core.api import METHODS, check_params, method_params
from retinaview.core.common.errors import Cancelled, RetinaviewError
from retinaview.core.explain.cam import cam
from retinaview.core.explain.gradients import input_gradients, saliency_maps
from retinaview.core.explain.methods import run_method
from tests.helpers_methods import tiny_input, tiny_model

torch.set_num_threads(1)

NEW = (
    "saliency",
    "gradxinput",
    "ig",
    "layer_ig",
    "ig_counterfactual",
    "cam",
    "gradcam",
    "contrast",
)
FAST = {
    "ig": {"steps": 4},
    "layer_ig": {"steps": 4, "layer": "b1"},
    "ig_counterfactual": {"steps": 4},
}


@pytest.mark.parametrize("name", NEW)
def test_every_method_follows_the_contract(name):
    model, x = tiny_model(), tiny_input()
    ex = run_method(name, model, x, **FAST.get(name, {}))
    assert ex.method == name
    assert ex.maps.shape == (5, 24, 24) and ex.maps.dtype == np.float64
    rows = list(ex.classes)
    assert rows and np.isfinite(ex.maps[rows]).all()
    others = [c for c in range(5) if c not in rows]
    assert np.isnan(ex.maps[others]).all()
    np.testing.assert_allclose(ex.probs, torch.softmax(model(x)[0], 0).detach().numpy(), atol=1e-12)
    json.dumps(ex.params)  # JSON-serialisable
    assert ex.seconds > 0
    for kind in ex.kinds:
        assert ex.kind(kind).shape == (5, 24, 24)


def test_registered_saliency_and_cam_equal_their_computations():
    model, x = tiny_model(), tiny_input()
    ex = run_method("saliency", model, x)
    _, order, grads = input_gradients(model, x)
    # The registered method runs on the copy with batch norm folded: the same function in float64.
    np.testing.assert_allclose(ex.maps[order], saliency_maps(grads), rtol=0, atol=1e-10)
    assert ex.classes[0] == ex.grade
    ex = run_method("cam", model, x)
    assert ex.check_name == "CAM identity error" and ex.check < 1e-12
    np.testing.assert_allclose(ex.maps[list(ex.classes)], cam(model, x).maps, rtol=0, atol=0)


def test_ig_streams_the_predicted_class_first_then_stops_between_steps():
    model, x = tiny_model(smooth=True), tiny_input()
    partial, progress = [], []
    ex = run_method(
        "ig",
        model,
        x,
        steps=16,
        on_partial=partial.append,
        on_progress=lambda d, t: progress.append((d, t)),
    )
    assert ex.check_name == "completeness error" and ex.check < 1e-8
    assert ex.check == pytest.approx(np.nanmax(ex.params["completeness"]))
    assert len(partial) == 1 and partial[0].classes == (ex.grade,)
    assert np.isfinite(partial[0].maps[ex.grade]).all()
    assert partial[0].check > ex.check  # the preview has a quarter of the steps
    assert progress[-1] == (20, 20)
    calls = []

    def stop():
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(Cancelled):
        run_method("ig", model, x, steps=16, batch_size=4, should_stop=stop)
    assert len(calls) == 2


def test_gradient_methods_stop_between_classes():
    model, x = tiny_model(), tiny_input()
    seen = []
    with pytest.raises(Cancelled):
        run_method("saliency", model, x, on_partial=seen.append, should_stop=lambda: True)
    assert len(seen) == 1 and seen[0].classes == (seen[0].grade,)


def test_contrast_and_counterfactual_results():
    model, x = tiny_model(), tiny_input()
    ex = run_method("contrast", model, x, k=3, j=2)
    assert ex.classes == (3,) and ex.check < 1e-10
    assert ex.maps[3].sum() == pytest.approx(ex.logits[3] - ex.logits[2], abs=1e-10)
    # An image inside the valid range: factor 0 then gives the image itself.
    pixels = torch.rand(
        (1, 3, 24, 24), dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    mean = torch.tensor(model.spec.mean, dtype=torch.float64).reshape(1, 3, 1, 1)
    std = torch.tensor(model.spec.std, dtype=torch.float64).reshape(1, 3, 1, 1)
    x = (pixels - mean) / std
    ex = run_method("ig_counterfactual", model, x, target=4, factors=[0.0, 0.5], steps=4)
    assert ex.classes == (4,) and len(ex.params["target_probs"]) == 2
    assert set(ex.kinds) == {"map", "difference_c0", "difference_c0.5"}
    np.testing.assert_allclose(ex.params["probs"][0], ex.probs, atol=1e-12)


def test_check_params_names_the_choices():
    assert set(NEW) | {"rfscore"} <= set(METHODS)
    assert method_params("ig")["steps"] == 32
    with pytest.raises(RetinaviewError, match=r"unknown explanation method 'lime' \(choices: cam"):
        method_params("lime")
    with pytest.raises(RetinaviewError, match=r"unknown parameter 'step' for method ig \(choices:"):
        check_params("ig", {"step": 3})
    with pytest.raises(RetinaviewError, match="steps='many'"):
        check_params("ig", {"steps": "many"})
    with pytest.raises(RetinaviewError, match="relu=1"):
        check_params("gradcam", {"relu": 1})
    check_params("gradcam", {"relu": False, "layer": "b1", "on_partial": print})


@pytest.fixture(scope="module")
def eye(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("eye") / "eye.png"
    Image.fromarray(data.retina()[::4, ::4]).save(path)
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--method", "lime"], ["unknown explanation method 'lime'", "saliency"]),
        (["--method", "ig", "--param", "stepz=4"], ["unknown parameter 'stepz'", "quadrature"]),
        (["--method", "ig", "--param", "steps"], ["not KEY=VALUE", "steps"]),
        (
            ["--method", "gradcam", "--param", "layer=body.layer99"],
            ["'body.layer99'", "body.layer15"],
        ),
        (["--method", "cam", "--model", "inception_v3"], ["inception_v3 does not", "densenet121"]),
    ],
)
def test_cli_bad_method_input_exit_2_one_line(eye, tmp_path, capsys, args, words):
    argv = ["explain", str(eye), "--model", "paper17", "--out", str(tmp_path), *args]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    line = [
        ln
        for ln in err.splitlines()
        if ln.startswith("retinaview:") and not ln.startswith("retinaview: model ")
    ]
    assert len(line) == 1 and all(w in line[0] for w in words), err


def test_cli_explain_with_a_method_writes_its_maps(eye, tmp_path, capsys):
    argv = ["explain", str(eye), "--model", "paper17", "--out", str(tmp_path), "--json"]
    code = main(
        [*argv, "--method", "gradcam", "--param", "relu=false", "--param", "layer=body.layer12"]
    )
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["method"] == "gradcam"
    npz = np.load(tmp_path / "eye.npz")
    assert str(npz["method"]) == "gradcam" and npz["map"].shape == (5, 640, 640)
    assert (npz["map"] < 0).any()
    assert (tmp_path / f"eye_c{line['grade']}.png").exists()
