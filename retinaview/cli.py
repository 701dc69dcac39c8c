"""The ``retinaview`` command: one entry point, one sub-command per task.

Each sub-command lives in ``retinaview/commands/<name>.py`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returning the exit code). Sub-command modules
import torch only inside ``func``, so ``retinaview --help`` and the GUI start fast.

Exit codes: 0 success, 1 failure while working, 2 bad input (one line on stderr naming the file).
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys

from retinaview.core.common.errors import RetinaviewError

COMMANDS = (
    "view",
    "explain",
    "layers",
    "synth",
    "train",
    "evaluate",
    "train_patient",
    "bench",
    "segment",
    "vessels_reweight",
    "study",
    "review",
    "compare",
)


def build_parser() -> argparse.ArgumentParser:
    from retinaview import __version__

    parser = argparse.ArgumentParser(
        prog="retinaview",
        description="Grade diabetic-retinopathy fundus photographs and show why.",
    )
    parser.add_argument("--version", action="version", version=f"retinaview {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"retinaview.commands.{name}")
        except Exception as exc:  # a broken install must not take the other commands down with it
            _unavailable(sub, name, exc)
            continue
        module.register(sub)
    return parser


def _unavailable(sub, name: str, exc: BaseException) -> None:
    """Register ``name`` as a command that, when asked for, says in one line why it cannot run (exit 2)."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    message = f"retinaview: the {name.replace('_', '-')} command is unavailable ({reason})"
    # No option prefix: every argument the user gave, options included, is taken as is and ignored.
    p = sub.add_parser(
        name.replace("_", "-"),
        help="unavailable in this installation",
        add_help=False,
        prefix_chars="\0",
    )
    p.add_argument("rest", nargs="*")

    def run(_args: argparse.Namespace) -> int:
        print(message, file=sys.stderr)
        return 2

    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:
        argv = ["view"]
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RetinaviewError as exc:
        print(f"retinaview: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("retinaview: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
