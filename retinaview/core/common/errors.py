"""Errors about what a user gave us. Each message is one line that names the file and the problem."""

from __future__ import annotations

import errno
import os


class RetinaviewError(Exception):
    """Bad input from the user: shown as one line (stderr with exit code 2, or a notice in the app)."""


class ImageError(RetinaviewError):
    """An image file that cannot be read or used."""


class CheckpointError(RetinaviewError):
    """A model file that cannot be loaded."""


class DataError(RetinaviewError):
    """A data folder or label file that cannot be used."""


def os_error_reason(exc: OSError) -> str:
    """The short reason of an operating-system error, for a one-line message.

    Parameters
    ----------
    exc : OSError
        The error, e.g. from ``open`` or ``mkdir``.

    Returns
    -------
    str
        The system's wording of the error number in lower case ("permission denied", "no space left on
        device"); the error's own text, on one line, when it carries no known number.
    """
    if exc.errno is not None and exc.errno in errno.errorcode:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    return " ".join(str(exc).split()) or type(exc).__name__


def os_error_message(path: str | os.PathLike[str], action: str, exc: OSError) -> str:
    """``"<path>: cannot <action> (<reason>)"``, the one line shown for an OS error on ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder the user named.
    action : str
        What failed, as a verb phrase: "read", "write", "list folder".
    exc : OSError
        The error.

    Returns
    -------
    str
    """
    return f"{os.fspath(path)}: cannot {action} ({os_error_reason(exc)})"


class Cancelled(Exception):
    """An explanation given up because nobody waits for it any more (a method's ``should_stop`` said so).

    Not a user error: the engine drops the request silently.
    """
