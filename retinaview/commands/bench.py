"""`retinaview bench`: time the RF decomposition against a forward pass, a naive loop and Captum."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser to ``subparsers`` (`retinaview.cli`)."""
    p = sub.add_parser("bench", help="benchmark the RF decomposition (printed figures)")
    p.add_argument("--model", default="default")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-captum", action="store_true", help="skip the (slow) Captum row")
    p.add_argument(
        "--methods",
        action="store_true",
        help="benchmark every explanation method instead (integrated gradients against Captum)",
    )
    p.add_argument(
        "--ig-steps",
        type=int,
        default=50,
        help="with --methods: steps of our ig (Captum's default)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command with the parsed ``args``; returns the exit code."""
    if args.methods:
        from retinaview.core.bench_methods import main as methods_main

        argv = ["--model", args.model, "--ig-steps", str(args.ig_steps)]
        return methods_main([*argv, "--no-captum"] if args.no_captum else argv)
    from retinaview.core.bench import main

    argv = ["--model", args.model, "--repeat", str(args.repeat)]
    return main([*argv, "--no-captum"] if args.no_captum else argv)
