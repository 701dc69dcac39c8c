"""The engine with the real torch backend and small real models (ResNet-18 at 64 px): what the numpy stand-in
cannot show (model identity in cache keys, feature maps of the model that actually runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from retinaview.engine.backend import TorchBackend
from retinaview.engine.worker import Engine
from tests.fake_backend import HeldBackend
from tests.helpers_models import small_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    return small_checkpoint(folder / "a.pt", 1, SIZE), small_checkpoint(folder / "b.pt", 2, SIZE)


def _image(seed: int, size: int = 80) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = np.hypot(yy - size / 2, xx - size / 2) < 0.45 * size
    img = rng.integers(40, 220, (size, size, 3)) * disc[..., None]
    return img.astype(np.uint8)


def _oracle_feature_maps(model, image: np.ndarray) -> np.ndarray:
    """w_cj * a_j / (h * w) from the original (unfolded) model's last explained layer, by a plain hook."""
    from retinaview.core.models.inputs import to_input
    from retinaview.core.preprocess import preprocess

    spec = model.spec
    seen = []
    module = dict(model.named_modules())[spec.explained_layers[-1]]
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            model(to_input(model, preprocess(image, spec.preprocessing, spec.input_size).image))
    finally:
        handle.remove()
    a = seen[0][0].double()
    w = dict(model.named_modules())[spec.classifier].weight.detach().double()
    return (w[:, :, None, None] * a[None] / (a.shape[1] * a.shape[2])).numpy()


def test_feature_maps_are_those_of_the_model_that_runs_every_time(checkpoints):
    backend = TorchBackend()
    model, _info = backend.load(str(checkpoints[0]))
    image = _image(0)
    oracle = _oracle_feature_maps(model, image)
    results = [backend.explain(model, image, "rfscore", {}) for _ in range(3)]
    for ex in results:
        assert ex.feature_maps is not None
        np.testing.assert_allclose(ex.feature_maps, oracle, rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(ex.feature_maps.sum((2, 3)), ex.features, rtol=1e-3, atol=1e-6)
    # No hook is left behind on the model or on the copy the explanation runs on.
    folded = model._retinaview_folded[1]
    for net in (model, folded):
        assert not any(m._forward_hooks for m in net.modules())


@pytest.fixture
def make_engine(qtbot):
    made: list[Engine] = []

    def make(backend, model: str, wait: bool = True) -> Engine:
        engine = Engine(backend, model=model)
        made.append(engine)
        if wait:
            with qtbot.waitSignal(engine.modelLoaded, timeout=60_000):
                engine.start()
        return engine

    yield make
    for engine in made:
        engine.close()


def _marked(seed: int) -> np.ndarray:
    """A photograph whose top-left pixel tells which one it is (the held backend records it)."""
    img = _image(seed)
    img[0, 0, 0] = seed
    return img


def test_a_stale_result_never_reaches_the_screen(qtbot, make_engine, checkpoints):
    backend = HeldBackend(TorchBackend())
    engine = make_engine(backend, str(checkpoints[0]))
    delivered = []
    engine.resultReady.connect(delivered.append)
    engine.request(_marked(1))
    assert backend.started.wait(30)
    # The first explanation is running (held); these arrive meanwhile and only the newest may run.
    last = [engine.request(_marked(k)) for k in range(2, 6)][-1]
    backend.release.set()
    with qtbot.waitSignal(
        engine.resultReady,
        timeout=60_000,
        check_params_cb=lambda r: r.request.generation == last and not r.partial,
    ):
        pass
    assert backend.calls == [1, 5]
    assert {r.request.generation for r in delivered} == {last}
    assert delivered[-1].photo[0, 0, 0] == 5


def test_cache_keys_follow_the_model_weights(qtbot, make_engine, checkpoints):
    engine = make_engine(TorchBackend(), str(checkpoints[0]))
    image = _image(3)
    with qtbot.waitSignal(engine.resultReady, timeout=60_000) as first:
        engine.request(image, params={"classes": "predicted"})
    with qtbot.waitSignal(engine.modelLoaded, timeout=60_000) as loaded:
        engine.load_model(str(checkpoints[1]))
    assert loaded.args[0].model_id != first.args[0].model.model_id
    with qtbot.waitSignal(engine.resultReady, timeout=60_000) as second:
        engine.request(image.copy(), params={"classes": "predicted"})
    a, b = first.args[0], second.args[0]
    assert not b.cached and b.model.model_id == loaded.args[0].model_id
    backend = TorchBackend()
    model_b, _ = backend.load(str(checkpoints[1]))
    np.testing.assert_allclose(b.probs, backend.predict(model_b, image), rtol=1e-5)
    assert not np.allclose(a.probs, b.probs)
    assert a.digest == b.digest == first.args[0].key[0]


def test_feature_maps_through_the_engine_match_the_oracle(qtbot, make_engine, checkpoints):
    engine = make_engine(TorchBackend(), str(checkpoints[0]))
    model, _ = TorchBackend().load(str(checkpoints[0]))
    for seed in (4, 5):
        image = _image(seed)
        with qtbot.waitSignal(
            engine.resultReady, timeout=60_000, check_params_cb=lambda r: not r.partial
        ) as blocker:
            engine.request(image, keep_layers=True)
        ex = blocker.args[0].explanation
        np.testing.assert_allclose(
            ex.feature_maps, _oracle_feature_maps(model, image), rtol=1e-3, atol=1e-6
        )


def test_views_each_get_their_newest_request(qtbot, make_engine, checkpoints):
    engine = make_engine(TorchBackend(), str(checkpoints[0]))
    main, by_view = [], {}
    engine.resultReady.connect(main.append)
    engine.viewResultReady.connect(lambda view, r: by_view.setdefault(view, []).append(r))
    image = _image(6)
    gens = engine.request_many(
        image, [("grid:0", "rfscore", {"classes": "predicted"}), ("grid:1", "rfscore", {})]
    )
    gens["grid:0"] = engine.request(image, params={"classes": [0]}, view="grid:0")
    with qtbot.waitSignal(
        engine.viewResultReady,
        timeout=60_000,
        check_params_cb=lambda view, r: view == "grid:1" and not r.partial,
    ):
        pass
    qtbot.waitUntil(lambda: any(not r.partial for r in by_view.get("grid:0", ())), timeout=60_000)
    assert main == []  # the main window sees only its own view
    for view, results in by_view.items():
        assert {r.request.generation for r in results} == {gens[view]}
        assert all(r.request.view == view for r in results)
    assert by_view["grid:0"][-1].explanation.classes == (0,)


def test_requests_get_an_error_when_the_first_model_fails(qtbot, make_engine, tmp_path):
    engine = make_engine(TorchBackend(), str(tmp_path / "missing.pt"), wait=False)
    engine.request(_image(7))
    with qtbot.waitSignal(engine.failed, timeout=60_000) as blocker:
        engine.start()
    assert "no model loaded" in blocker.args[0] and "missing.pt" in blocker.args[0]
    with qtbot.waitSignal(engine.failed, timeout=60_000):
        engine.request(_image(8))


@pytest.fixture(scope="module")
def vessel_checkpoint(tmp_path_factory) -> Path:
    """A small DRIU (Maninis et al. 2016) with random weights: its task is "vessels" by architecture."""
    from retinaview.core.checkpoint import save_checkpoint
    from retinaview.core.models.registry import build_model

    torch.manual_seed(0)
    model, spec = build_model("driu", {"input_size": SIZE, "width": 0.25})
    assert spec.task == "vessels"
    return save_checkpoint(tmp_path_factory.mktemp("vessels") / "driu.pt", model.eval(), spec)


def test_a_vessels_model_is_not_asked_to_grade(qtbot, make_engine, vessel_checkpoint):
    engine = make_engine(TorchBackend(), str(vessel_checkpoint))
    assert engine.model_info.task == "vessels"
    with qtbot.waitSignal(engine.failed, timeout=60_000) as blocker:
        engine.request(_image(9))
    assert "vessels model cannot explain" in blocker.args[0]


def test_the_backend_segments_with_the_core(vessel_checkpoint):
    from retinaview.core.segment import segment

    backend = TorchBackend()
    model, info = backend.load(str(vessel_checkpoint))
    image = _image(10, 72)
    prob = backend.segment(model, image)
    assert info.task == "vessels" and prob.shape == image.shape[:2]
    assert prob.min() >= 0 and prob.max() <= 1
    np.testing.assert_array_equal(prob, segment(model, image).on_photo())


def test_old_checkpoints_load_as_graders(checkpoints, tmp_path):
    from retinaview.core.checkpoint import load_checkpoint, read_checkpoint

    payload = read_checkpoint(checkpoints[0])
    assert payload["config"]["task"] == "grading"
    del payload["config"]["task"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    assert load_checkpoint(old)[1].task == "grading"


def test_torch_is_imported_with_huge_pages_unless_the_user_chose(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "import os, sys; from retinaview.engine.backend import import_torch; import_torch(); "
        "assert 'torch' in sys.modules; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "1"
