"""Grading with the keyboard through the panel into a real review database; the session rules behind it
(commit before moving, hide the model until graded, resume at the first ungraded image); a database that
refuses writes; and 1,000 rapid image switches."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

from retinaview.core.common.review_session import ReviewSession
from retinaview.core.common.review_store import ReviewStore
from retinaview.ui.grading_panel import GradingPanel, read_hide_ai
from tests.ui_layout import text_problems


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
            images / f"eye{k}.png"
        )
    return images


@pytest.fixture
def store(folder):
    s = ReviewStore.for_folder(folder)
    yield s
    s.close()


class Clock:
    """A hand-moved monotonic clock, so seconds spent are exact."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


@pytest.fixture
def panel(qtbot, store, folder):
    p = GradingPanel()
    asked = []
    p.ask_reviewer = lambda parent: asked.append(1) or "Dr Ada"
    qtbot.addWidget(p)
    assert p.ensure_reviewer(store) and p.ensure_reviewer(store)
    assert len(asked) == 1  # asked once per project
    p.show()
    return p


def _advance(panel: GradingPanel, session: ReviewSession) -> None:
    """What the window does on advanceRequested: ask the panel, then show the next image."""
    nxt = session.next_index()
    if nxt is not None:
        assert panel.request_move(nxt)


def test_keys_enter_and_undo_commit_to_the_store(qtbot, panel, store, folder):
    clock = Clock()
    session = ReviewSession(
        store, _files(folder), model="paper17", model_checksum="abc", clock=clock
    )
    panel.advanceRequested.connect(lambda: _advance(panel, session))
    assert panel.open_session(session) == 0
    assert store.reviewer == "Dr Ada"

    qtbot.keyClick(panel, Qt.Key.Key_3)
    assert panel.grade_buttons[3].isChecked() and panel.referable.text() == "Referable: yes"
    qtbot.keyClick(panel, Qt.Key.Key_1)
    assert panel.grade_buttons[1].isChecked() and not panel.grade_buttons[3].isChecked()
    assert panel.referable.text() == "Referable: no"
    qtbot.keyClick(panel, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    clock.t += 7.5
    assert store.get("eye0.png") is None  # nothing on disk before Enter
    with qtbot.waitSignal(panel.committed) as saved:
        qtbot.keyClick(panel, Qt.Key.Key_Return)
    rec = store.get("eye0.png")
    assert saved.args[0] == rec
    assert (rec.grade, rec.confidence, rec.referable, rec.reviewer) == (1, 4, False, "Dr Ada")
    assert rec.seconds == pytest.approx(7.5) and rec.model_checksum == "abc"
    assert session.current.name == "eye1.png"  # Enter moved on

    # An ungradable image: U, then a reason, then Enter.
    qtbot.keyClick(panel, Qt.Key.Key_U)
    assert not panel.gradable.isChecked() and panel.reason.isEnabled()
    assert panel.referable.text() == "Referable: yes"
    qtbot.keyClick(panel, Qt.Key.Key_Return)
    assert store.get("eye1.png") is None and "reason" in panel.status.text()
    panel.reason.setCurrentIndex(panel.reason.findData("out of focus"))
    qtbot.keyClick(panel, Qt.Key.Key_Return)
    rec1 = store.get("eye1.png")
    assert (rec1.gradable, rec1.reason, rec1.grade, rec1.referable) == (
        False,
        "out of focus",
        None,
        True,
    )

    # A note typed in the note field, Enter there commits too, and moves on by one image only (the next
    # image is already graded, so a second Enter reaching the panel would move again).
    qtbot.keyClick(panel, Qt.Key.Key_2)
    panel.note.setFocus()
    qtbot.keyClicks(panel.note, "microaneurysms temporal")
    qtbot.keyClick(panel.note, Qt.Key.Key_Return)
    assert store.get("eye2.png").note == "microaneurysms temporal"
    assert session.current.name == "eye3.png"

    # Going back and changing a grade keeps the history; undo restores the earlier record.
    assert panel.request_move(0)
    assert panel.grade_buttons[1].isChecked()  # the stored grade is shown again
    qtbot.keyClick(panel, Qt.Key.Key_0)
    with qtbot.waitSignal(panel.committed):
        qtbot.keyClick(panel, Qt.Key.Key_Return)
    assert store.get("eye0.png").grade == 0
    assert [h.after["grade"] for h in store.history("eye0.png")] == [1, 0]
    with qtbot.waitSignal(panel.undone, check_params_cb=lambda i: i == 0):
        qtbot.keyClick(panel, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.get("eye0.png").grade == 1


def test_hide_the_ai_until_the_grade_is_committed(qtbot, panel, store, folder):
    session = ReviewSession(store, _files(folder))
    assert session.hide_ai  # on by default in a review project
    shown = []
    panel.aiVisibilityChanged.connect(shown.append)
    panel.open_session(session)
    panel.set_model_output("2 · Moderate (71 %)")
    panel.set_quality("ungradable: too dark")  # model-free: shown while the model is hidden
    assert not panel.ai_visible and "2 · Moderate" not in panel.model_label.text()
    assert panel.quality_label.isVisible() and "too dark" in panel.quality_label.text()
    assert shown == [False]
    qtbot.keyClick(panel, Qt.Key.Key_1)
    assert not panel.ai_visible  # entered, not committed
    panel.commit()
    assert panel.ai_visible and panel.model_label.text() == "Model: 2 · Moderate (71 %)"
    assert shown == [False, True]
    # The next, ungraded image hides the model again; a graded one shows it at once.
    assert panel.request_move(1)
    assert not panel.ai_visible and shown[-1] is False
    assert not panel.quality_label.isVisible()  # the verdict was the previous image's
    assert panel.request_move(0)
    assert panel.ai_visible and shown[-1] is True

    off = ReviewSession(store, _files(folder), hide_ai=False)
    panel.open_session(off)
    assert panel.ai_visible and not panel.hide_ai.isChecked()
    # The check box is the setting: remembered for the next project, on by default.
    assert read_hide_ai()
    panel.hide_ai.setChecked(True)
    assert not panel.ai_visible and off.hide_ai
    panel.hide_ai.setChecked(False)
    assert panel.ai_visible and not read_hide_ai()
    assert ReviewSession(store, _files(folder), hide_ai=read_hide_ai()).hide_ai is False


def test_move_commits_first_and_resume_at_first_ungraded(qtbot, panel, store, folder):
    files = _files(folder)
    session = ReviewSession(store, files)
    panel.open_session(session)
    qtbot.keyClick(panel, Qt.Key.Key_2)
    assert panel.request_move(1)  # the browser moved: the grade was committed first
    assert store.get("eye0.png").grade == 2
    panel.set_grade(3)
    panel.set_gradable(False)  # ungradable without a reason: the move is refused, nothing lost
    assert not panel.request_move(2)
    assert session.current.name == "eye1.png" and "reason" in panel.status.text()
    panel.set_gradable(True)
    assert panel.request_move(2)
    assert panel.close_session() is None
    # Reopening the folder resumes at the first image without a grade.
    again = ReviewSession(store, files)
    assert again.start() == 2
    store.grade(files[2], 0)
    store.grade(files[4], 0)
    assert ReviewSession(store, files).resume_index() == 3


def test_store_that_refuses_one_message_kept_pending_saved_elsewhere(
    qtbot, panel, store, folder, tmp_path
):
    session = ReviewSession(store, _files(folder))
    panel.open_session(session)
    store.conn.execute("PRAGMA query_only=1")  # SQLite refuses writes, as for a read-only file
    notices = []
    panel.noticeShown.connect(notices.append)
    qtbot.keyClick(panel, Qt.Key.Key_4)
    panel.note.setText("cotton-wool spots")
    panel.session.edit(note="cotton-wool spots")
    assert not panel.request_move(1)  # not saved: the screen stays on the image
    assert len(notices) == 1 and "\n" not in notices[0] and "read-only" in notices[0]
    assert panel.notice.isVisible() and panel.save_elsewhere.isVisible()
    assert [(p.file, p.grade, p.note) for p in store.pending] == [
        ("eye0.png", 4, "cotton-wool spots")
    ]
    # Kept in memory: the reviewer may move on, and the image counts as graded (the model shows).
    assert panel.request_move(1) and len(notices) == 1
    assert session.ai_visible(_files(folder)[0])

    out = tmp_path / "elsewhere.csv"
    panel.ask_save_path = lambda parent: str(out)
    qtbot.mouseClick(panel.save_elsewhere, Qt.MouseButton.LeftButton)
    rows = out.read_text().splitlines()
    assert rows[0].startswith("image,level") and rows[1].startswith("eye0,4,eye0.png,Dr Ada")
    assert not panel.notice.isVisible()
    store.conn.execute("PRAGMA query_only=0")
    assert session.retry_pending() == 1 and store.get("eye0.png").grade == 4


def test_thousand_rapid_switches_lose_no_grade_and_memory_stays_bounded(
    qtbot, panel, store, folder
):
    files = _files(folder)
    session = ReviewSession(store, files)
    panel.open_session(session)
    rng = np.random.default_rng(1)
    expected: dict[str, int] = {}
    tracemalloc.start()
    try:
        peak_after = []
        for k in range(1000):
            if k % 3 == 0:
                g = int(rng.integers(0, 5))
                panel.set_grade(g)
                expected[session.current.name] = g
            target = int(rng.integers(0, len(files)))
            assert panel.request_move(target) or session.index == target
            if k in (199, 999):
                peak_after.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    panel.close_session()
    assert {f: store.get(f).grade for f in expected} == expected
    assert not store.pending
    # Memory in use after 1,000 switches is what it was after 200 (within 256 kB): nothing piles up.
    assert peak_after[1] - peak_after[0] < 256 * 1024


def test_panel_text_fits_at_1440x880(qtbot, store, folder):
    host = QWidget()
    qtbot.addWidget(host)
    panel = GradingPanel(host)
    panel.ask_reviewer = lambda parent: "Dr Ada"
    assert panel.ensure_reviewer(store)
    layout = QHBoxLayout(host)
    layout.addStretch(1)
    layout.addWidget(panel)
    panel.setFixedWidth(300)
    host.resize(1440, 880)
    host.show()
    session = ReviewSession(store, _files(folder))
    panel.open_session(session)
    panel.set_model_output("2 · Moderate (71 %)")
    panel.set_quality("ungradable: out of focus")
    qtbot.keyClick(panel, Qt.Key.Key_U)
    panel.reason.setCurrentIndex(panel.reason.findData("too bright"))
    panel.show_notice(f"{store.path}: read-only (cannot write). Kept in memory.", offer_save=True)
    qtbot.wait(10)
    assert text_problems(host) == []


def test_agreement_panel_numbers_confusion_and_disagreements(qtbot, store, folder, tmp_path):
    from retinaview.core.common.agreement import quadratic_weighted_kappa
    from retinaview.ui.agreement_panel import AgreementPanel

    files = _files(folder)
    truth = [0, 1, 2, 3, 4, 2]
    model = [0, 1, 3, 3, 4, 0]
    ada = [0, 2, 2, 3, 3, 2]
    bob = [1, 1, 2, 4, 4, 2]
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "image,level\n" + "".join(f"{f.stem},{t}\n" for f, t in zip(files, truth, strict=True))
    )
    store.import_ground_truth(labels)
    for f, m, a, b in zip(files, model, ada, bob, strict=True):
        store.add_prediction(f, m, "paper17", "abc")
        store.grade(f, a, reviewer="Ada")
        store.grade(f, b, reviewer="Bob")
    panel = AgreementPanel()
    qtbot.addWidget(panel)
    panel.resize(420, 700)
    panel.show()
    panel.refresh(store)
    assert [panel.who.itemText(i) for i in range(panel.who.count())] == [
        "All reviewers",
        "Ada",
        "Bob",
    ]

    def show(who, pair):
        panel.who.setCurrentIndex(panel.who.findData(who))
        panel.pair.setCurrentIndex(panel.pair.findData(pair))
        return {k: v.text() for k, v in panel.values.items()}

    ada_truth = show("Ada", "reviewer_vs_truth")
    assert ada_truth["n"] == "6"
    assert ada_truth["qwk"] == f"{quadratic_weighted_kappa(truth, ada):.3f}"
    assert ada_truth["accuracy"] == "67 % (4/6)"  # grades 0, 2, 3, 2 agree
    assert ada_truth["sensitivity"] == "100 % (4/4)" and ada_truth["specificity"] == "50 % (1/2)"
    # Confusion of Ada vs truth: rows truth, columns Ada.
    assert panel.confusion.item(1, 2).text() == "1" and panel.confusion.item(4, 3).text() == "1"
    assert panel.confusion.item(2, 2).text() == "2" and panel.confusion.item(0, 1).text() == "·"
    with qtbot.waitSignal(panel.filterRequested) as got:
        qtbot.mouseClick(panel.disagree, Qt.MouseButton.LeftButton)
    assert got.args[0] == {files[1].name, files[4].name}

    assert show("all", "model_vs_truth")["accuracy"] == "67 % (4/6)"
    assert not panel.disagree.isEnabled()  # the browser filters on a reviewer's grades
    assert show("all", "reviewer_vs_truth")["n"] == "12"
    assert panel.request_filter() == {files[k].name for k in (0, 1, 3, 4)}
    panel.resize(300, 700)
    assert text_problems(panel) == []


def test_open_folder_resumes_and_a_corrupt_project_is_one_notice(qtbot, folder, tmp_path):
    from retinaview.core.common.review_store import default_review_path

    panel = GradingPanel()
    qtbot.addWidget(panel)
    panel.ask_reviewer = lambda parent: "Dr Ada"
    files = _files(folder)
    assert panel.open_folder(folder, files, model="paper17", model_checksum="abc") == 0
    panel.set_grade(2)
    panel.commit_and_advance()
    panel.close_session()
    panel.ask_reviewer = lambda parent: pytest.fail("the name is asked once per project")
    assert panel.open_folder(folder, files) == 1  # resumes at the first ungraded image
    assert panel.session.store.get(files[0]).model_checksum == "abc"
    panel.close_session()

    default_review_path(folder).write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        default_review_path(folder).with_name(default_review_path(folder).name + suffix).unlink(
            missing_ok=True
        )
    with qtbot.waitSignal(panel.noticeShown) as notice:
        assert panel.open_folder(folder, files) is None
    assert "\n" not in notice.args[0] and "Review project not opened" in notice.args[0]
    assert panel.session is None
