"""Vessel segmentation through the engine: a real DRIU checkpoint (64 px) in the second model slot, beside a
grader; Grad-CAM per layer against Captum's LayerGradCam; re-weighted side outputs; live figures against a
vessel mask beside the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from retinaview.core.checkpoint import save_checkpoint
from retinaview.core.models.registry import build_model
from retinaview.engine.backend import SegmentingBackend, TorchBackend, region_mask
from retinaview.engine.requests import VESSELS_VIEW, SegmentResult
from retinaview.engine.worker import Engine
from tests.helpers_models import small_checkpoint

torch.set_num_threads(1)
SIZE = 64
PHOTO = 96


def driu_checkpoint(path: Path, seed: int = 0) -> Path:
    """A narrow DRIU at 64 px with random weights (biases too, so that no map is flat)."""
    torch.manual_seed(seed)
    config = {"num_classes": 1, "width": 0.0625, "input_size": SIZE, "task": "vessels"}
    model, spec = build_model("driu", config)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.uniform_(-0.2, 0.2)
    return save_checkpoint(path, model, spec)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    return driu_checkpoint(folder / "driu.pt"), small_checkpoint(folder / "grader.pt", 1, SIZE)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A synthetic data set (ground truth in groundtruth/<stem>.npz), one image with a PNG mask of its
    own beside it, and one without any mask."""
    from retinaview.core.synthetic.writer import write_dataset

    folder = tmp_path_factory.mktemp("photos")
    write_dataset(folder / "synth", 2, seed=3, size=PHOTO)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (PHOTO, PHOTO, 3), dtype=np.uint8)).save(
        folder / "plain.png"
    )
    Image.fromarray(rng.integers(0, 255, (PHOTO, PHOTO, 3), dtype=np.uint8)).save(
        folder / "drawn.png"
    )
    mask = np.zeros((PHOTO, PHOTO), np.uint8)
    mask[:, 40:48] = 255
    Image.fromarray(mask).save(folder / "drawn_vessels.png")
    return folder


def _synth_images(folder: Path) -> list[Path]:
    return sorted((folder / "synth").glob("*.png"))


def test_torch_backend_offers_the_segmenting_seam():
    assert isinstance(TorchBackend(), SegmentingBackend)


def test_gradcam_per_layer_matches_captum(models, photos):
    from captum.attr import LayerGradCam

    from retinaview.core.models.driu import gradcam_layers
    from retinaview.core.models.inputs import to_input
    from retinaview.core.preprocess import preprocess

    backend = TorchBackend()
    model, info = backend.load_vessels(str(models[0]))
    assert info.task == "vessels"
    photo = np.asarray(Image.open(_synth_images(photos)[0]))
    pre = preprocess(photo, model.spec.preprocessing, model.spec.input_size)
    region = (10.0, 20.0, 60.0, 70.0)
    mask = torch.from_numpy(region_mask(pre.geometry, region))
    for signed in (False, True):
        _seg, cams = backend.segment_explained(
            model, photo, gradcam=True, region=region, signed=signed
        )
        assert list(cams) == gradcam_layers(model)
        modules = dict(model.named_modules())
        for name in ("stage1.relu1_2", "stage3.relu3_3", "side4"):
            lgc = LayerGradCam(
                lambda x: model(x)[:, 0][:, mask].sum(1, keepdim=True), modules[name]
            )
            x = to_input(model, pre.image)
            oracle = lgc.attribute(x, target=0, relu_attributions=not signed)
            oracle = LayerGradCam.interpolate(oracle, (SIZE, SIZE), "bilinear")[0, 0].detach()
            scale = float(oracle.abs().max())
            assert scale > 0
            np.testing.assert_allclose(cams[name], oracle.numpy(), atol=1e-5 * scale)


def test_branch_weights_change_the_map_and_are_restored(models, photos):
    from retinaview.core.segment import segment

    backend = TorchBackend()
    model, _ = backend.load_vessels(str(models[0]))
    photo = np.asarray(Image.open(_synth_images(photos)[0]))
    base = segment(model, photo).probability
    one, _ = backend.segment_explained(model, photo, branch_weights=(1, 1, 1, 1))
    np.testing.assert_array_equal(one.probability, base)
    # With Grad-CAM the segmentation comes from its forward pass: the same network, re-weighted too.
    plain, _ = backend.segment_explained(model, photo, branch_weights=(2, 0, 1, 0.5))
    with_cams, cams = backend.segment_explained(
        model, photo, branch_weights=(2, 0, 1, 0.5), gradcam=True
    )
    assert cams and not np.allclose(plain.probability, base)
    np.testing.assert_allclose(with_cams.probability, plain.probability, atol=1e-6)
    zero, _ = backend.segment_explained(model, photo, branch_weights=(0, 0, 0, 0))
    # Every side output silenced: the fuse layer's bias alone, the same logit at every pixel.
    bias = float(model.fuse.bias.detach())
    np.testing.assert_allclose(zero.logits, bias, atol=1e-6)
    assert torch.equal(model.branch_weights, torch.ones(4))


def test_a_region_off_the_photograph_is_one_line(models, photos):
    from retinaview.core.common.errors import RetinaviewError

    backend = TorchBackend()
    model, _ = backend.load_vessels(str(models[0]))
    photo = np.asarray(Image.open(photos / "plain.png"))
    with pytest.raises(RetinaviewError, match="region"):
        backend.segment_explained(model, photo, gradcam=True, region=(500, 500, 600, 600))


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


def _segment(qtbot, eng: Engine, image, params=None, view=VESSELS_VIEW) -> SegmentResult:
    with qtbot.waitSignal(
        eng.viewResultReady, timeout=60_000, check_params_cb=lambda v, _r: v == view
    ) as blocker:
        eng.segment(image, params, view=view)
    result = blocker.args[1]
    assert isinstance(result, SegmentResult)
    return result


def test_segment_results_arrive_cached_and_the_grader_stays(qtbot, engine, models, photos):
    image = _synth_images(photos)[0]
    first = _segment(qtbot, engine, image, {"gradcam": True})
    assert engine.model_info.arch == "resnet18"
    assert engine.vessel_model_info.arch == "driu"
    assert first.probability.shape == first.fov.shape == (SIZE, SIZE)
    assert first.photo.shape == (PHOTO, PHOTO, 3) and not first.cached
    assert len(first.gradcams) == 14 and first.scores is not None
    again = _segment(qtbot, engine, image, {"gradcam": True})
    assert again.cached and again.probability is first.probability
    heavier = _segment(qtbot, engine, image, {"gradcam": True, "branch_weights": [3, 1, 1, 1]})
    assert not heavier.cached
    assert not np.array_equal(heavier.probability, first.probability)
    # The grader still explains, in the same engine.
    failures: list[str] = []
    engine.failed.connect(lambda message, _path: failures.append(message))
    with qtbot.waitSignal(engine.resultReady, timeout=20_000) as blocker:
        engine.request(image, "rfscore")
    assert not failures and blocker.args[0].model.arch == "resnet18"


def test_figures_against_a_png_mask_and_the_synthetic_ground_truth(qtbot, engine, photos):
    from retinaview.core.common.vessel_metrics import vessel_scores
    from retinaview.core.model_loading import load_model
    from retinaview.core.segment import segment
    from retinaview.core.synthetic.writer import load_groundtruth

    plain = _segment(qtbot, engine, photos / "plain.png")
    assert plain.scores is None and plain.mask is None
    drawn = _segment(qtbot, engine, photos / "drawn.png")
    assert drawn.mask == "drawn_vessels.png" and 0 <= drawn.scores["miou"] <= 1
    image = _synth_images(photos)[1]
    synth = _segment(qtbot, engine, image, {"branch_weights": [1, 0.5, 2, 1]})
    assert synth.mask == f"{image.stem}.npz"
    # The same figures computed here from the core, independently of the engine.
    model = load_model(engine.vessel_model_info.source)
    model.branch_weights.copy_(torch.tensor([1, 0.5, 2, 1]))
    seg = segment(model, str(image))
    truth = load_groundtruth(photos / "synth" / "groundtruth" / f"{image.stem}.npz").vessels
    truth = seg.geometry.to_model(truth, order=0) & seg.fov
    expected = vessel_scores(seg.probability, truth, seg.fov, seg.threshold)
    assert synth.scores["miou"] == pytest.approx(expected.miou)
    assert synth.scores["f1"] == pytest.approx(expected.f1, nan_ok=True)


def test_newest_request_of_a_view_wins(qtbot, engine, photos):
    images = _synth_images(photos)
    seen: list[SegmentResult] = []
    engine.viewResultReady.connect(lambda v, r: seen.append(r) if v == VESSELS_VIEW else None)
    for k in range(6):
        engine.segment(images[k % 2], {"branch_weights": [1, 1, 1, 1 + k / 10]})
    last = engine.generation
    qtbot.waitUntil(lambda: bool(seen) and seen[-1].request.generation == last, timeout=60_000)
    # Older requests were replaced before they started, or their results were not delivered.
    assert all(r.request.generation == last for r in seen)


def test_a_grader_as_vessel_model_is_one_line(qtbot, engine, models, photos):
    with qtbot.waitSignal(engine.vesselModelFailed, timeout=60_000) as blocker:
        engine.load_vessel_model(str(models[1]))
    message = blocker.args[0]
    assert "not a vessel segmentation model" in message and "\n" not in message
    # The vessel model loaded before stays in use.
    assert _segment(qtbot, engine, photos / "plain.png").model.arch == "driu"


def test_a_bad_mask_is_one_line(qtbot, engine, tmp_path):
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(tmp_path / "eye.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "eye_vessels.png")
    with qtbot.waitSignal(engine.viewFailed, timeout=60_000) as blocker:
        engine.segment(tmp_path / "eye.png")
    view, message, _path = blocker.args
    assert view == VESSELS_VIEW and "eye_vessels.png" in message and "20x20" in message


def test_a_mask_put_beside_the_image_later_is_read(qtbot, engine, tmp_path):
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (PHOTO, PHOTO, 3), dtype=np.uint8)).save(
        tmp_path / "a.png"
    )
    before = _segment(qtbot, engine, tmp_path / "a.png")
    assert before.scores is None
    mask = np.zeros((PHOTO, PHOTO), np.uint8)
    mask[30:40, :] = 255
    Image.fromarray(mask).save(tmp_path / "a_vessels.png")
    after = _segment(qtbot, engine, tmp_path / "a.png")
    assert not after.cached and after.mask == "a_vessels.png" and after.scores is not None
