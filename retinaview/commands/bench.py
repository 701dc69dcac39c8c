"""`retinaview bench`: time the RF decomposition against a forward pass, a naive loop and Captum."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser to ``subparsers`` (`retinaview.cli`)."""
    p = sub.add_parser("bench", help="benchmark the RF decomposition (printed figures)")
    p.add_argument("--model", default="default")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-captum", action="store_true", help="skip the (slow) Captum row")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command with the parsed ``args``; returns the exit code."""
    from retinaview.core.bench import main

    argv = ["--model", args.model, "--repeat", str(args.repeat)]
    return main([*argv, "--no-captum"] if args.no_captum else argv)
