"""The command line's shared pieces: the progress line and the one-line OS-error messages."""

from __future__ import annotations

import errno
import io

from retinaview.cli import main
from retinaview.commands._progress import Progress
from retinaview.core.common.errors import os_error_message, os_error_reason


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_only():
    piped = io.StringIO()
    bar = Progress(5, "work", stream=piped)
    for _ in range(5):
        bar.update()
    bar.message("a note")
    bar.close()
    assert piped.getvalue() == "a note\n"

    term = FakeTerminal()
    with Progress(0, "work", stream=term) as bar:
        bar.callback(2, 4)
        bar.callback(4, 4)
    text = term.getvalue()
    assert "[" + "#" * 24 + "] 4/4" in text and text.endswith("\n")
    # the second call came within the redraw interval but is the last step: it is drawn anyway
    assert text.count("\r") == 2


def test_os_error_reason_uses_the_system_wording():
    assert (
        os_error_reason(OSError(errno.ENOSPC, "No space left on device"))
        == "no space left on device"
    )
    assert os_error_reason(PermissionError(errno.EACCES, "x")) == "permission denied"
    assert os_error_reason(OSError("odd\nfailure")) == "odd failure"
    message = os_error_message("out/a.png", "write", OSError(errno.EROFS, "x"))
    assert message == "out/a.png: cannot write (read-only file system)"


def test_synth_into_a_path_below_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "data"
    assert main(["synth", "--n", "1", "--seed", "0", "--out", str(out), "--size", "64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("retinaview: ")
    assert "is a file, not a folder" in err
