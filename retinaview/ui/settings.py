"""Where the app remembers things (QSettings, organisation and application "retinaview").

``RETINAVIEW_SETTINGS_DIR`` points the settings at another folder (an INI file there): tests use a temporary
folder so they never read or write a user's settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANISATION = "retinaview"
APPLICATION = "retinaview"
ENV_DIR = "RETINAVIEW_SETTINGS_DIR"


def app_settings() -> QSettings:
    folder = os.environ.get(ENV_DIR)
    if folder:
        return QSettings(str(Path(folder) / "retinaview.ini"), QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


def read_float(settings: QSettings, key: str, default: float, lo: float, hi: float) -> float:
    """A number from the settings, or ``default`` when it is missing, not a number or out of range
    (a hand-edited or corrupt settings file must not break start-up)."""
    try:
        value = float(settings.value(key, default))
    except (TypeError, ValueError):
        return default
    return value if lo <= value <= hi else default


def read_choice(settings: QSettings, key: str, default: str, choices) -> str:
    value = settings.value(key, default)
    return value if isinstance(value, str) and value in choices else default


def read_bool(settings: QSettings, key: str, default: bool) -> bool:
    """A yes/no from the settings (INI files store it as text), or ``default`` when missing or garbled."""
    value = settings.value(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default
