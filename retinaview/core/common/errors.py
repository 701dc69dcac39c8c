"""Errors about what a user gave us. Each message is one line that names the file and the problem."""

from __future__ import annotations


class RetinaviewError(Exception):
    """Bad input from the user: shown as one line (stderr with exit code 2, or a notice in the app)."""


class ImageError(RetinaviewError):
    """An image file that cannot be read or used."""


class CheckpointError(RetinaviewError):
    """A model file that cannot be loaded."""


class DataError(RetinaviewError):
    """A data folder or label file that cannot be used."""


class Cancelled(Exception):
    """An explanation given up because nobody waits for it any more (a method's ``should_stop`` said so).

    Not a user error: the engine drops the request silently.
    """
