"""The engine: newest request wins, stale results are dropped, results are cached, errors are messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retinaview.core.common.masks import nsigma_mask
from retinaview.engine.cache import ResultCache
from retinaview.engine.prepare import prepare_maps
from retinaview.engine.worker import Engine
from retinaview.ui.colormaps import COLORMAPS, overlay_lut
from tests.fake_backend import FakeBackend, HeldBackend, fake_explanation


def _image(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture
def engine_factory(qtbot):
    made = []

    def make(**kwargs) -> Engine:
        backend = kwargs.pop("backend", None) or FakeBackend(input_size=64)
        engine = Engine(backend, **kwargs)
        made.append(engine)
        with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
            engine.start()
        return engine

    yield make
    for engine in made:
        engine.close()


def test_newest_request_wins_and_stale_results_are_dropped(qtbot, engine_factory):
    backend = HeldBackend(FakeBackend(input_size=64))
    engine = engine_factory(backend=backend)
    delivered = []
    engine.resultReady.connect(delivered.append)
    images = [_image(k) for k in range(6)]
    for k, img in enumerate(images):
        img[0, 0, 0] = k
    engine.request(images[0])
    assert backend.started.wait(10)
    # The first explanation is running (held): of the requests sent meanwhile only the newest runs, and the
    # first one's result, which still comes back, is dropped.
    last = [engine.request(img) for img in images[1:]][-1]
    backend.release.set()
    with qtbot.waitSignal(
        engine.resultReady, timeout=10_000, check_params_cb=lambda r: r.request.generation == last
    ):
        pass
    assert backend.calls == [0, 5]
    assert [r.request.generation for r in delivered] == [last]
    np.testing.assert_array_equal(delivered[0].photo, images[-1])


def test_cache_hits_by_content_and_parameters(qtbot, engine_factory):
    backend = FakeBackend(input_size=64)
    engine = engine_factory(backend=backend)
    img = _image(1)
    for params, cached in (({}, False), ({}, True), ({"sigma_factor": 0.3}, False)):
        with qtbot.waitSignal(engine.resultReady, timeout=10_000) as blocker:
            engine.request(img.copy(), params=params)
        assert blocker.args[0].cached is cached
    assert len(backend.explained) == 2
    assert len(engine.cache) == 2


def test_cache_is_bounded_by_bytes():
    cache: ResultCache[bytes] = ResultCache(max_bytes=10, size_of=len)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    cache.get("a")  # "a" is now the most recently used
    cache.put("c", b"1234")
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.nbytes == 8
    cache.put("huge", b"x" * 11)
    assert "huge" not in cache and cache.nbytes == 8


def test_bad_image_is_a_message_and_the_engine_goes_on(qtbot, engine_factory, tmp_path):
    engine = engine_factory()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with qtbot.waitSignal(engine.failed, timeout=10_000) as blocker:
        engine.request(bad)
    message, path = blocker.args
    assert "bad.jpg" in message and "\n" not in message and Path(path) == bad
    with qtbot.waitSignal(engine.resultReady, timeout=10_000):
        engine.request(_image(2))


def test_model_errors_keep_the_current_model(qtbot, engine_factory):
    engine = engine_factory(backend=FakeBackend(input_size=64, fail_load=("broken.pt",)))
    before = engine.model_info
    with qtbot.waitSignal(engine.modelFailed, timeout=10_000) as blocker:
        engine.load_model("broken.pt")
    assert "broken.pt" in blocker.args[0]
    assert engine.model_info is before
    with qtbot.waitSignal(
        engine.modelLoaded, timeout=10_000, check_params_cb=lambda i: i.model_id == "fake:other"
    ):
        engine.load_model("other")


def test_folder_scoring_reports_each_image_and_finishes(qtbot, engine_factory, tmp_path):
    from PIL import Image

    paths = []
    for k in range(3):
        p = tmp_path / f"img{k}.png"
        Image.fromarray(_image(k, 48)).save(p)
        paths.append(p)
    bad = tmp_path / "zz_bad.png"
    bad.write_bytes(b"garbage")
    engine = engine_factory()
    scored, failed = [], []
    engine.scored.connect(lambda p, probs: scored.append((p, probs)))
    engine.scoreFailed.connect(lambda p, m: failed.append((p, m)))
    with qtbot.waitSignal(engine.scoringFinished, timeout=10_000) as blocker:
        engine.score([*paths, bad])
    assert blocker.args == [True]
    assert sorted(p for p, _ in scored) == paths
    assert all(abs(probs.sum() - 1) < 1e-9 for _, probs in scored)
    assert [p for p, _ in failed] == [bad]


def test_cancel_scoring(qtbot, engine_factory, tmp_path):
    engine = engine_factory(backend=FakeBackend(delay=0.0, input_size=64))
    with qtbot.waitSignal(
        engine.scoringFinished, timeout=10_000, check_params_cb=lambda done: done is False
    ):
        engine.score([tmp_path / f"missing{k}.png" for k in range(500)])
        engine.cancel_scoring()


def test_overlay_mask_matches_the_core_nsigma_mask():
    ex = fake_explanation(_image(3, 128), (128, 128))
    prepared = prepare_maps(ex.total, ex.fov)
    cmap = COLORMAPS["green_red"]
    for c in range(5):
        for n in (0.0, 1.0, 2.5):
            for mode in ("positive", "negative", "absolute"):
                lut = overlay_lut(cmap, prepared.cut_index(c, n), mode)
                drawn = lut[prepared.index[c], 3] > 0
                exact = nsigma_mask(ex.total[c], n, mode, ex.fov)
                # The index image quantises scores to L/127 (L <= 6 sigma): only pixels within that
                # distance of the cut may differ.
                assert np.mean(drawn != exact) < 0.01, (c, n, mode)


def test_ui_and_engine_do_not_import_torch():
    code = (
        "import sys; import retinaview.ui.main_window, retinaview.ui.app, retinaview.engine.worker;"
        "import retinaview.commands.view; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_partial_results_come_first_and_are_never_cached(qtbot, engine_factory):
    engine = engine_factory(backend=FakeBackend(delay=0.1, input_size=64, progressive=True))
    delivered = []
    engine.resultReady.connect(delivered.append)
    img = _image(4)
    with qtbot.waitSignal(
        engine.resultReady, timeout=10_000, check_params_cb=lambda r: not r.partial
    ):
        engine.request(img)
    *partials, final = delivered
    # The predicted class first, one more class each time; the last class comes with the final result.
    assert [len(r.done) for r in partials] == [1, 2, 3, 4]
    assert partials[0].done == (final.grade,)
    for r in partials:
        for c in range(5):
            index = r.maps["total"].index[c]
            if r.is_done(c):
                np.testing.assert_array_equal(index, final.maps["total"].index[c])
            else:
                assert not index.any() and r.maps["total"].sigma[c] == 0
        np.testing.assert_array_equal(r.probs, final.probs)
    assert final.done == () and all(final.is_done(c) for c in range(5))
    assert np.isfinite(final.residual) and final.residual < 1e-5
    assert len(engine.cache) == 1 and next(iter(engine.cache._items.values()))[0].partial is False
    # Asked again: the cached final result only, no partials.
    delivered.clear()
    with qtbot.waitSignal(engine.resultReady, timeout=10_000):
        engine.request(img.copy())
    assert [(r.partial, r.cached) for r in delivered] == [(False, True)]


def test_a_newer_request_stops_the_running_explanation(qtbot, engine_factory):
    engine = engine_factory(backend=FakeBackend(delay=0.5, input_size=64, progressive=True))
    with qtbot.waitSignal(engine.resultReady, timeout=10_000, check_params_cb=lambda r: r.partial):
        first = engine.request(_image(5))
    last = engine.request(_image(6))
    delivered = []
    engine.resultReady.connect(delivered.append)
    with qtbot.waitSignal(
        engine.resultReady,
        timeout=10_000,
        check_params_cb=lambda r: r.request.generation == last and not r.partial,
    ):
        pass
    assert all(r.request.generation == last for r in delivered)
    # The first image was given up between two classes: nothing of it was cached.
    assert len(engine.cache) == 1 and first != last


class _OneMapBackend(FakeBackend):
    """The stand-in, its explanations turned into a method with a single map kind and its own check."""

    def explain(self, *args, **kwargs):
        import dataclasses

        ex = super().explain(*args, **kwargs)
        return dataclasses.replace(
            ex,
            method="saliency",
            map_kind="map",
            extra_maps={},
            differences={},
            layers=[],
            bias=None,
            features=None,
            feature_maps=None,
            check_name="completeness error",
            check=0.25,
        )


def test_a_method_with_one_map_kind_goes_through_the_engine(qtbot, engine_factory):
    engine = engine_factory(backend=_OneMapBackend(input_size=64))
    with qtbot.waitSignal(engine.resultReady, timeout=10_000) as blocker:
        engine.request(_image(7), method="saliency")
    result = blocker.args[0]
    assert result.kinds == ("map",) and result.explanation.method == "saliency"
    assert result.prepared("constant") is result.maps["map"]
    assert result.residual == 0.25 and result.check_name == "completeness error"
    assert len(result.digest) == 32


def test_remembered_digests_and_scores_are_bounded(qtbot, monkeypatch, tmp_path):
    from PIL import Image

    from retinaview.engine import worker

    monkeypatch.setattr(worker, "DIGEST_CACHE_ENTRIES", 2)
    monkeypatch.setattr(worker, "SCORE_CACHE_ENTRIES", 3)
    paths = []
    for k in range(5):
        p = tmp_path / f"img{k}.png"
        Image.fromarray(_image(k, 32)).save(p)
        paths.append(p)
    engine = Engine(FakeBackend(input_size=32))
    try:
        with qtbot.waitSignal(engine.modelLoaded, timeout=10_000):
            engine.start()
        with qtbot.waitSignal(engine.scoringFinished, timeout=10_000):
            engine.score(paths)
        assert len(engine._worker._digests) == 2
        assert len(engine._worker._scores) == 3
    finally:
        engine.close()
