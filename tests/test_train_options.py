"""Training options are checked once (retinaview.train.options): the CLI, the trainer and the dialog agree."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from retinaview.core.common.errors import DataError
from retinaview.train import options as O


def test_architecture_names_are_the_registry():
    from retinaview.core.models.registry import ARCHITECTURES

    assert sorted(O.ARCHITECTURE_TASKS) == sorted(ARCHITECTURES)
    assert "driu" not in O.ARCHITECTURE_NAMES and "paper17" in O.ARCHITECTURE_NAMES


def test_losses_are_the_trainers():
    from retinaview.train.losses import LOSSES

    assert tuple(O.LOSSES) == LOSSES


def _base(tmp_path, **kw):
    base = dict(
        out=str(tmp_path / "run"),
        arch="paper17",
        data="synth:30:0",
        epochs=2,
        batch=5,
        lr=3e-4,
        loss="kappa",
        balance="none",
        image_size=None,
        resume=False,
    )
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arch": "vgg99"}, "unknown architecture 'vgg99' (known: densenet121, inception_v3,"),
        ({"data": "synth:x"}, "synth:x: expected synth:N or synth:N:SEED"),
        ({"data": "synth:0"}, "synth:0: N must be positive"),
        ({"data": "synth:3:0"}, "synth:3:0: 3 training images, fewer than one batch of 5"),
        ({"epochs": 0}, "--epochs 0: expected a whole number >= 1"),
        ({"batch": -1}, "--batch -1: expected a whole number >= 1"),
        ({"lr": 0.0}, "--lr 0.0: expected a positive number"),
        ({"lr": float("nan")}, "--lr nan: expected a positive number"),
        ({"loss": "mse"}, "--loss mse: expected one of kappa, ce, kappa+ce"),
        ({"balance": "1,2"}, "--balance 1,2: expected 5 non-negative proportions"),
        ({"image_size": 8}, "--image-size 8: expected a whole number >= 16"),
        ({"val_fraction": 1.5}, "--val-fraction 1.5: expected a fraction between 0 and 1"),
        ({"out": ""}, "--out: choose an output folder"),
    ],
)
def test_each_bad_option_is_one_line(tmp_path, change, message):
    found = O.problems(_base(tmp_path, **change))
    assert len(found) == 1 and found[0].startswith(message), found
    with pytest.raises(DataError, match="^" + message.replace("(", r"\(").replace("+", r"\+")):
        O.check(_base(tmp_path, **change))


def test_good_options_have_no_problem(tmp_path):
    assert O.problems(_base(tmp_path)) == []
    assert O.first_problem(_base(tmp_path)) is None


def test_image_folder_needs_images_and_labels(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    assert "no images" in O.first_problem(_base(tmp_path, data=str(folder)))
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    assert "no labels CSV" in O.first_problem(_base(tmp_path, data=str(folder)))
    (folder / "trainLabels.csv").write_text("image,level\na,0\n")
    assert O.first_problem(_base(tmp_path, data=str(folder))) is None
    assert O.find_labels_file(folder).name == "trainLabels.csv"


def _taken(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "last.pt").write_bytes(b"x")
    return out


def test_cli_and_dialog_say_the_same(tmp_path, capsys, qtbot):
    """The same problem in the same words, each front end naming its own control."""
    from retinaview.cli import main
    from retinaview.ui.train_dialog import DIALOG_NAMES, TrainDialog

    out = _taken(tmp_path)
    assert main(["train", "--out", str(out), "--data", "synth:30:0", "--batch", "5"]) == 2
    cli = capsys.readouterr().err.strip().removeprefix("retinaview: ")
    dialog = TrainDialog(out_root=tmp_path)
    qtbot.addWidget(dialog)
    dialog.count_spin.setValue(30)
    dialog.batch_spin.setValue(5)
    dialog.out_edit.setText(str(out))
    gui = dialog.validate()
    dialog.close()
    assert "already holds a run" in cli
    as_dialog = cli.replace(O.CLI_NAMES["resume"], DIALOG_NAMES["resume"])
    assert as_dialog.replace(O.CLI_NAMES["out"], DIALOG_NAMES["out"]) == gui


def test_cli_refuses_a_bad_option_before_loading_torch(tmp_path):
    code = (
        "import sys\n"
        "from retinaview.cli import main\n"
        f"rc = main(['train', '--arch', 'vgg99', '--data', 'synth:30:0', '--out', {str(tmp_path)!r}])\n"
        "assert rc == 2, rc\n"
        "assert 'torch' not in sys.modules, 'torch loaded'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().startswith("retinaview: unknown architecture 'vgg99'")
    assert done.stderr.count("\n") == 1


def test_trainer_checks_the_same_options(tmp_path):
    from retinaview.train.trainer import TrainConfig, train

    with pytest.raises(DataError, match="already holds a run"):
        train(TrainConfig(out=str(_taken(tmp_path)), data="synth:30:0", batch=5))
    with pytest.raises(DataError, match="--epochs 0"):
        train(TrainConfig(out=str(tmp_path / "new"), data="synth:30:0", batch=5, epochs=0))


def test_options_module_is_torch_free():
    code = "import sys, retinaview.train.options\nassert 'torch' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
