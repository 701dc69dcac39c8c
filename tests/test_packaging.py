"""Packaging metadata: the .desktop file and AppStream metainfo validate, the PyInstaller spec is sound."""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
APP_ID = "org.retinaview.RetinaView"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
SPEC = PACKAGING / "retinaview.spec"


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_desktop_file_validates():
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate not installed (Debian: desktop-file-utils)")
    result = _run([tool, str(DESKTOP)])
    errors = [line for line in result.stdout.splitlines() if "error:" in line or "warning:" in line]
    assert result.returncode == 0 and not errors, result.stdout + result.stderr


def test_desktop_file_fields():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(DESKTOP, encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Exec"] == "retinaview view %F"
    assert d["Icon"] == APP_ID
    assert set(d["MimeType"].strip(";").split(";")) == {
        "image/png",
        "image/jpeg",
        "image/tiff",
        "image/bmp",
    }
    assert {"Graphics", "Science", "MedicalSoftware"} <= set(d["Categories"].split(";"))


def test_metainfo_validates():
    appstreamcli = shutil.which("appstreamcli")
    appstream_util = shutil.which("appstream-util")
    if appstreamcli:
        result = _run([appstreamcli, "validate", "--no-net", str(METAINFO)])
    elif appstream_util:
        result = _run([appstream_util, "validate-relax", "--nonet", str(METAINFO)])
    else:
        pytest.skip("neither appstreamcli nor appstream-util installed (Debian: appstream)")
    assert result.returncode == 0, result.stdout + result.stderr


def test_metainfo_names_the_app():
    root = ET.parse(METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("metadata_license") == "CC0-1.0"
    assert root.findtext("project_license") == "BSD-3-Clause"
    assert root.find("provides/binary").text == "retinaview"
    release = root.find("releases/release")
    assert release.get("version") == "0.1.0" and release.get("date") == "2026-11-23"
    screenshots = [img.text for img in root.iter("image")]
    assert screenshots and all(s.endswith(".png") for s in screenshots)


def test_spec_parses_and_names_the_entry_point():
    tree = ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))
    source = SPEC.read_text(encoding="utf-8")
    assert '"__main__.py"' in source and (ROOT / "retinaview" / "__main__.py").is_file()
    calls = {
        node.func.id: node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= set(calls)
    for name in ("EXE", "COLLECT"):
        upx = [kw.value for kw in calls[name].keywords if kw.arg == "upx"]
        assert upx and isinstance(upx[0], ast.Constant) and upx[0].value is False
    assert "retinaview.commands" in source


def test_entry_point_calls_freeze_support():
    source = (ROOT / "retinaview" / "__main__.py").read_text(encoding="utf-8")
    assert "multiprocessing.freeze_support()" in source
    assert "from retinaview.cli import main" in source


def test_icon_files():
    from PIL import Image

    svg = ET.parse(ROOT / "resources" / "icons" / "retinaview.svg").getroot()
    assert svg.tag.endswith("svg")
    with Image.open(ROOT / "resources" / "icons" / "retinaview.png") as png:
        assert png.size == (256, 256) and png.mode == "RGBA"
