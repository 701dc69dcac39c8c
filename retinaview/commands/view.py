"""``retinaview view [PATH]``: the desktop app (also what ``retinaview`` alone starts)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "view",
        help="open the desktop viewer",
        description="Open the desktop viewer on a folder of fundus photographs or on one image.",
    )
    p.add_argument("path", nargs="?", metavar="PATH", help="folder of images, or one image")
    p.add_argument(
        "--model", default="default", help="model file or architecture (default: bundled)"
    )
    p.add_argument(
        "--class", dest="cls", type=int, metavar="C", help="class to show (default: predicted)"
    )
    p.add_argument("--threshold", type=float, metavar="N", help="n-sigma threshold, 0..5")
    p.add_argument("--grid", action="store_true", help="show all classes side by side")
    p.add_argument(
        "--screenshot", metavar="FILE", help="save a screenshot of the window when ready, then exit"
    )
    p.add_argument(
        "--panel",
        choices=("overlay", "inspector"),
        default="overlay",
        help="centre panel: the overlay viewer, or the layer-by-layer inspector",
    )
    p.add_argument(
        "--layer",
        type=int,
        metavar="N",
        help="layer the inspector shows: 0 = input, 1..L the explained layers (default: the last)",
    )
    p.add_argument(
        "--autoplay",
        action="store_true",
        help="with --panel inspector: walk through the layers, output to input, in a loop (demos)",
    )
    p.add_argument("--size", metavar="WxH", help="window size, e.g. 1600x900 (screenshots)")
    p.set_defaults(func=run)


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(
            f"retinaview view: --size {text}: expected WIDTHxHEIGHT, e.g. 1600x900"
        ) from None
    return w, h


def make_engine(model: str):
    """The engine with the torch backend; torch itself loads later, in the engine's worker thread."""
    from retinaview.engine.backend import TorchBackend
    from retinaview.engine.worker import Engine

    return Engine(TorchBackend(), model=model)


def run(args) -> int:
    from retinaview.ui.app import ViewOptions
    from retinaview.ui.app import run as run_app

    if args.cls is not None and not 0 <= args.cls <= 4:
        raise SystemExit(f"retinaview view: --class {args.cls}: expected 0..4")
    options = ViewOptions(
        path=args.path,
        model=args.model,
        cls=args.cls,
        threshold=args.threshold,
        grid=args.grid,
        screenshot=args.screenshot,
        panel=args.panel,
        layer=args.layer,
        autoplay=args.autoplay,
        size=_size(args.size),
    )
    return run_app(options, lambda: make_engine(args.model))
