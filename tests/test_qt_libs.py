"""The start-up check of Qt's xcb plugin: ldd output -> missing libraries -> Debian packages -> apt-get."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from retinaview import _qt_libs as Q

# ldd on PySide6's libqxcb.so on a fresh Debian 12 machine (abridged).
LDD_FRESH = """\
\tlinux-vdso.so.1 (0x00007ffd4a3f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f1)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f2)
\tlibxcb-icccm.so.4 => not found
\tlibglib-2.0.so.0 => not found
\tlibX11-xcb.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3)
"""
LDD_OK = "\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f2)\n"
DISPLAY = {"DISPLAY": ":0"}


def test_missing_libraries_from_ldd_output():
    assert Q.missing_libraries(LDD_FRESH) == [
        "libxcb-cursor.so.0",
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
        "libxkbcommon-x11.so.0",
        "libglib-2.0.so.0",
        "libX11-xcb.so.1",
    ]
    assert Q.missing_libraries(LDD_OK) == []


@pytest.mark.parametrize(
    ("soname", "package"),
    [
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxcb-render-util.so.0", "libxcb-render-util0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
        ("libX11.so.6", "libx11-6"),
        ("libEGL.so.1", "libegl1"),
        ("libdbus-1.so.3", "libdbus-1-3"),
        ("libglib-2.0.so.0", "libglib2.0-0"),
    ],
)
def test_debian_package_names(soname, package):
    assert Q.debian_package(soname) == package


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"DISPLAY": ":0"}, True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "minimal"}, False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "xcb"}, False),
    ],
)
def test_check_only_when_a_display_uses_xcb(env, wanted):
    assert Q.needs_check(env) is wanted


class FakeSystem:
    """ldd and apt-get as a test sees them: apt-get 'installs' by making ldd report nothing missing."""

    def __init__(self, ldd: str, apt_works: bool = True, needs_update: bool = False) -> None:
        self.ldd, self.apt_works, self.needs_update = ldd, apt_works, needs_update
        self.commands: list[list[str]] = []

    def run(self, command):
        command = list(command)
        self.commands.append(command)
        if command[0] == "ldd":
            return subprocess.CompletedProcess(command, 0, self.ldd, "")
        if command[:2] == ["apt-get", "update"]:
            self.needs_update = False
            return subprocess.CompletedProcess(command, 0, "", "")
        if self.apt_works and not self.needs_update:
            self.ldd = LDD_OK
            return subprocess.CompletedProcess(command, 0, "", "")
        return subprocess.CompletedProcess(command, 100, "", "E: Unable to locate package x\n")


def _check(system: FakeSystem, env=DISPLAY, root=True, apt="/usr/bin/apt-get"):
    out = io.StringIO()
    tools = {"ldd": "/usr/bin/ldd", "apt-get": apt}
    rc = Q.check(env, Path("libqxcb.so"), system.run, root, tools.get, out)
    return rc, out.getvalue()


PACKAGES = [
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxkbcommon-x11-0",
    "libglib2.0-0",
    "libx11-xcb1",
]


def test_root_installs_the_packages_then_qt_can_start():
    system = FakeSystem(LDD_FRESH)
    rc, text = _check(system)
    assert rc == 0
    assert ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES] in system.commands
    assert "libxcb-cursor.so.0" in text


def test_root_updates_the_package_lists_of_a_fresh_machine():
    system = FakeSystem(LDD_FRESH, needs_update=True)
    rc, _ = _check(system)
    assert rc == 0
    assert ["apt-get", "update"] in system.commands


def test_without_root_prints_the_one_command_and_installs_nothing():
    system = FakeSystem(LDD_FRESH)
    rc, text = _check(system, root=False)
    assert rc == 1
    assert all(c[0] == "ldd" for c in system.commands)
    assert f"sudo apt-get install -y --no-install-recommends {' '.join(PACKAGES)}" in text


def test_failed_install_prints_the_command():
    rc, text = _check(FakeSystem(LDD_FRESH, apt_works=False))
    assert rc == 1
    assert "Unable to locate package" in text
    assert "apt-get install -y" in text


def test_without_apt_names_the_packages():
    rc, text = _check(FakeSystem(LDD_FRESH), apt=None)
    assert rc == 1
    assert "libxcb-icccm4" in text and "package manager" in text


def test_nothing_missing_or_no_display_runs_no_apt():
    system = FakeSystem(LDD_OK)
    assert _check(system) == (0, "")
    headless = FakeSystem(LDD_FRESH)
    assert _check(headless, env={"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}) == (0, "")
    assert headless.commands == []


def test_the_check_module_is_qt_and_torch_free():
    import sys

    code = (
        "import sys, retinaview._qt_libs as q; q.xcb_plugin(); "
        "assert not {'torch', 'PySide6.QtCore'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
