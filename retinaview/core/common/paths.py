"""Output paths, checked before any work starts: a command that would fail on its first write should fail
at once, with one line, not after minutes of work and not with an OS traceback.

Each check raises `DataError` naming the path and the problem: an existing file where a folder is wanted
(or the reverse), a path under a file, a folder that cannot be written (permissions, a read-only file
system). Writability is probed by creating and removing a temporary file, since permission bits alone do
not show read-only mounts, access-control lists or a process running as root. Torch-free.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from tempfile import mkstemp

from retinaview.core.common.errors import DataError

__all__ = ["check_output_file", "check_output_folder"]


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the current folder for a relative path)."""
    p = path
    while not os.path.lexists(p):
        parent = p.parent
        if parent == p:
            break
        p = parent
    return p


# The longest file name most file systems take (bytes); a longer one fails only when written.
NAME_MAX = 255


def _check_names(path: Path, shown: str) -> None:
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise DataError(f"{shown}: a name in the path is longer than {NAME_MAX} bytes")


def _probe_writable(folder: Path, shown: str) -> None:
    try:
        fd, tmp = mkstemp(prefix=".retinaview-write-test.", dir=folder)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise DataError(f"{shown}: cannot write to {folder} (read-only file system)") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise DataError(f"{shown}: cannot write to {folder} (permission denied)") from None
        if exc.errno == errno.ENOSPC:
            raise DataError(f"{shown}: cannot write to {folder} (no space left)") from None
        reason = exc.strerror or type(exc).__name__
        raise DataError(f"{shown}: cannot write to {folder} ({reason})") from None
    os.close(fd)
    os.unlink(tmp)


def _check_parents(path: Path, shown: str) -> Path:
    """The nearest existing ancestor of ``path``, which must be a folder; returns it."""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise DataError(f"{shown}: {base} is a file, not a folder")
    return base


def check_output_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Check that ``path`` is, or can be created as, a folder this process can write to; returns it.

    Nothing is created: a missing folder is checked through its nearest existing ancestor.
    """
    p = Path(path)
    shown = f"{option} {p}" if option else str(p)
    _check_names(p, shown)
    if os.path.lexists(p):
        if not p.is_dir():
            raise DataError(f"{shown}: exists and is not a folder")
        _probe_writable(p, shown)
        return p
    base = _check_parents(p, shown)
    _probe_writable(base, shown)
    return p


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Check that ``path`` can be written as a file (replacing a file there); returns it."""
    p = Path(path)
    shown = f"{option} {p}" if option else str(p)
    _check_names(p, shown)
    if p.is_dir():
        raise DataError(f"{shown}: is a folder, expected a file name")
    if os.path.lexists(p) and not p.is_file():
        raise DataError(f"{shown}: exists and is not a regular file")
    if str(path).endswith(os.sep):
        raise DataError(f"{shown}: names a folder, expected a file name")
    base = _check_parents(p, shown)
    _probe_writable(base, shown)
    return p
