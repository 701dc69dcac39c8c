"""Check, before the first window, that Qt's X11 platform plugin finds the system libraries it needs.

PySide6's wheels bring Qt but not the X11 client libraries of its xcb platform plugin (``libxcb-cursor0``,
``libxcb-icccm4``, ``libxcb-keysyms1`` and friends). A fresh Debian or Ubuntu machine often lacks some of them,
and Qt then aborts with "Could not load the Qt platform plugin xcb" before any window. ``make run`` runs
``python -m retinaview._qt_libs`` first: it lists the libraries that ``ldd`` cannot find for the plugin, names
their Debian packages, installs them when it can (root and apt-get), and otherwise prints the one command that
does. Nothing is checked when no display is set or Qt is told to draw offscreen (tests, headless runs).

Torch-free and Qt-free: PySide6 is located, not imported, so the check works when Qt itself cannot load.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Sonames whose Debian package name does not follow the usual rule (see `debian_package`).
PACKAGE_OF = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
}
# Platforms that do not load the xcb plugin at all.
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "wayland")
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)
_SONAME = re.compile(r"^(?P<name>lib[\w.+-]*?)\.so\.(?P<major>\d+)")

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def xcb_plugin() -> Path | None:
    """The PySide6 xcb platform plugin (``.../PySide6/Qt/plugins/platforms/libqxcb.so``), if installed."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        plugin = Path(root) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reported as "not found", each once, in the order ldd printed them."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname``.

    The rule of Debian's library packaging policy: the library name in lower case followed by its major
    version, with a hyphen between them when the name ends in a digit (``libxcb-icccm.so.4`` ->
    ``libxcb-icccm4``, ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0``); `PACKAGE_OF` lists exceptions.
    """
    if soname in PACKAGE_OF:
        return PACKAGE_OF[soname]
    m = _SONAME.match(soname)
    if m is None:
        return soname
    name = m["name"].lower().replace("_", "-")
    return f"{name}-{m['major']}" if name[-1].isdigit() else f"{name}{m['major']}"


def needs_check(env: Mapping[str, str]) -> bool:
    """False when Qt will not load the xcb plugin: no X or Wayland display, or a non-xcb platform asked for."""
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if platform and platform != "xcb" and platform.startswith(HEADLESS_PLATFORMS):
        return False
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def install_command(packages: Sequence[str], root: bool) -> list[str]:
    """The apt-get command that installs ``packages`` (with sudo unless running as root)."""
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    return command if root else ["sudo", *command]


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


def check(
    env: Mapping[str, str] | None = None,
    plugin: Path | None = None,
    run: Runner = _run,
    root: bool | None = None,
    which: Callable[[str], str | None] = shutil.which,
    out=None,
) -> int:
    """Find the xcb plugin's missing libraries and install them (or say how); 0 when Qt can start.

    Parameters
    ----------
    env
        The environment that decides whether a display is used (default ``os.environ``).
    plugin
        The xcb plugin to check (default: PySide6's).
    run
        Runs a command and returns its ``CompletedProcess`` (tests pass a fake; nothing is installed then).
    root
        Whether apt-get may run without sudo (default: the effective user id is 0).
    which
        ``shutil.which``-like lookup of ``ldd`` and ``apt-get``.
    out
        Stream for the messages (default stderr).

    Returns
    -------
    int
        0 when nothing is missing (or nothing needs checking), 1 when libraries are still missing.
    """
    env = os.environ if env is None else env
    out = sys.stderr if out is None else out
    if not needs_check(env):
        return 0
    plugin = plugin or xcb_plugin()
    if plugin is None or which("ldd") is None:
        return 0  # no PySide6 xcb plugin here (another OS or platform): nothing this check can tell
    missing = missing_libraries(run(["ldd", str(plugin)]).stdout)
    if not missing:
        return 0
    packages = list(dict.fromkeys(debian_package(s) for s in missing))
    root = (os.geteuid() == 0) if root is None else root
    print(
        f"retinaview: Qt's X11 platform plugin needs system libraries this machine lacks: "
        f"{', '.join(missing)}",
        file=out,
    )
    if which("apt-get") is None:
        print(
            "retinaview: install them with your package manager (Debian/Ubuntu packages: "
            f"{' '.join(packages)})",
            file=out,
        )
        return 1
    command = install_command(packages, root)
    if root:
        print(f"retinaview: installing {' '.join(packages)}", file=out)
        done = run(command)
        if done.returncode != 0:
            # A fresh container has no package lists yet.
            run(["apt-get", "update"])
            done = run(command)
        still = missing_libraries(run(["ldd", str(plugin)]).stdout)
        if done.returncode == 0 and not still:
            return 0
        print(f"retinaview: apt-get could not install them: {_last_line(done.stderr)}", file=out)
    print(f"retinaview: install them with: {' '.join(command)}", file=out)
    return 1


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


if __name__ == "__main__":
    sys.exit(check())
