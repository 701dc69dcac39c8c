"""The Qt binding keeps Python's reference counts: PySide6 6.12.0 on Python 3.11 does not (the app aborts)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def test_signals_and_void_methods_keep_reference_counts():
    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        probe.setObjectName("probe")
        probe.ping.emit()
    # A leaking binding loses one reference per call; allow small noise from the interpreter itself.
    assert sys.getrefcount(None) - none_before > -50
    assert sys.getrefcount(True) - true_before > -50
