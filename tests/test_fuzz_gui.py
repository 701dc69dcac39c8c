"""Fuzzing the desktop app's open paths through the real `MainWindow`: a folder of every image case (bad
files are marked in the browser with the reason and the rest is graded), a bad labels file, and Open Model
with bad model files (one notice, and the current model stays in use)."""

from __future__ import annotations

import re

import pytest

from retinaview.engine.worker import Engine
from retinaview.ui.main_window import MainWindow
from tests.fake_backend import FakeBackend
from tests.fuzz_inputs import (
    CHECKPOINT_EDITS,
    CSV_CASES,
    IMAGE_CASES,
    checkpoint_file_cases,
    edited_copy,
    paper17_checkpoint,
    tiny_checkpoint,
)


def _window(qtbot, engine: Engine) -> MainWindow:
    win = MainWindow(engine, restore=False)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(engine.modelLoaded, timeout=60_000):
        engine.start()
    return win


@pytest.fixture
def fake_window(qtbot):
    win = _window(qtbot, Engine(FakeBackend(input_size=64)))
    yield win
    win.close()


# The thumbnail threads decode with Pillow; retinaview's process-wide filter for Pillow's metadata
# warnings is reset by pytest around each test, so it is applied here as well (the subprocess test at the
# end checks the filter itself).
@pytest.mark.filterwarnings(r"ignore::UserWarning:PIL\.TiffImagePlugin")
def test_folder_of_every_image_case(qtbot, fake_window, tmp_path):
    made = {c.name: c.make(tmp_path) for c in IMAGE_CASES}
    with qtbot.waitSignal(fake_window.engine.scoringFinished, timeout=60_000):
        assert fake_window.open_path(tmp_path)
    entries = {e.path.name: e for e in fake_window.browser.model.entries()}
    listed = [c for c in IMAGE_CASES if c.listed]
    assert set(entries) == {made[c.name].name for c in listed}
    for case in listed:
        entry = entries[made[case.name].name]
        if case.expect == "reject":
            assert entry.probs is None, case.name
            assert entry.error and "\n" not in entry.error, case.name
            assert re.search(case.match, entry.error), (case.name, entry.error)
        else:
            assert entry.error is None and entry.probs is not None, (case.name, entry.error)
    # The window goes on: the status line counts the unreadable files.
    bad = sum(c.expect == "reject" for c in listed)
    assert f"{bad} unreadable" in fake_window.grading_label.text()


# The browser reads the rows of a labels.csv that is a regular file (whether the images exist is the
# browser's own business: it shows the images there are).
BROWSER_CSV = [
    c
    for c in CSV_CASES
    if c.expect == "reject"
    and c.name not in ("missing", "folder", "named_pipe", "missing_image", "device")
]


@pytest.mark.parametrize("case", BROWSER_CSV, ids=repr)
def test_folder_with_a_bad_labels_file(case, qtbot, fake_window, tmp_path):
    from PIL import Image

    from tests.fuzz_inputs import reference_image

    for k in range(2):
        Image.fromarray(reference_image()).save(tmp_path / f"eye{k}.png")
    labels = case.make(tmp_path)
    with qtbot.waitSignal(fake_window.noticeShown, timeout=10_000) as notice:
        assert fake_window.open_path(tmp_path)
    message = notice.args[0]
    assert message.startswith(f"{labels}") and "\n" not in message
    assert re.search(case.match, message) and message.endswith("(ground truth not shown)")
    assert len(fake_window.browser.model.entries()) == 2


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    good = tiny_checkpoint(folder / "good.pt")
    base = paper17_checkpoint(folder / "paper17.pt")
    bad = [(c.name, c.make(folder), c.match) for c in checkpoint_file_cases(base)]
    for name, edit, match in CHECKPOINT_EDITS:
        if name in (
            "weights_nan",
            "class_names_three",
            "state_dict_shape",
            "preprocessing_unknown",
        ):
            bad.append((name, edited_copy(base, folder / f"{name}.pt", edit), match))
    return good, bad


def test_open_model_with_bad_files_keeps_the_current_model(qtbot, model_files):
    from retinaview.engine.backend import TorchBackend

    good, bad = model_files
    engine = Engine(TorchBackend(), model=str(good))
    win = _window(qtbot, engine)
    try:
        label = win.model_label.text()
        assert str(good) in label
        for name, path, match in bad:
            with qtbot.waitSignal(win.noticeShown, timeout=60_000) as notice:
                win.open_model(str(path))
            message = notice.args[0]
            assert message.startswith(f"Model not opened: {path}"), (name, message)
            assert "\n" not in message and re.search(match, message), (name, message)
            assert win.model_label.text() == label, name
            assert engine.model_info.source == str(good), name
    finally:
        win.close()


def test_thumbnail_of_a_broken_exif_file_adds_no_line_to_stderr(tmp_path):
    """The browser's thumbnail threads decode with Pillow too; a separate process, so that no test
    harness records the warning before it reaches stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    image = next(c for c in IMAGE_CASES if c.name == "exif_broken").make(tmp_path)
    code = (
        "import sys; from retinaview.core.common import io; from retinaview.ui.thumbnails import "
        "thumbnail; assert not thumbnail(sys.argv[1], 72).isNull()"
    )
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(image)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
