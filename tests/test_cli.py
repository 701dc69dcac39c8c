"""The ``retinaview`` entry point."""

from __future__ import annotations

import importlib

from retinaview import cli


def test_a_command_that_cannot_import_says_so_and_exits_2(monkeypatch, capsys):
    real_import = importlib.import_module

    def broken(name, *args, **kwargs):
        if name == "retinaview.commands.synth":
            raise ImportError("libfoo.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", broken)
    assert cli.main(["synth", "--out", "x", "--count", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "retinaview: the synth command is unavailable (libfoo.so: cannot open shared object file)"
    )
    # The other commands are still there.
    args = cli.build_parser().parse_args(["layers", "--model", "paper17"])
    assert args.func.__module__ == "retinaview.commands.layers"
