"""`retinaview layers`: the explained layers of a model with their receptive fields."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "layers", help="print the explained layers: output shape, RF size, jump, centre"
    )
    p.add_argument(
        "--model", default="default", help="'default', an architecture name, or a checkpoint"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinaview.core.explain.methods import layer_rfs
    from retinaview.core.explain.receptive_field import paper_rf_sizes
    from retinaview.core.model_loading import load_model

    model = load_model(args.model, device="cpu")
    spec = model.spec
    rfs = layer_rfs(model)
    paper = paper_rf_sizes(len(rfs)) if spec.arch == "paper17" else None
    print(f"{spec.arch} ({spec.source}), input {spec.input_size}x{spec.input_size}")
    head = f"{'#':>3}  {'layer':<24} {'output shape':<16} {'RF':>5} {'jump':>5} {'centre(0,0)':>12}"
    if paper:
        head += f" {'paper RF*':>9}"
    print(head)
    for k, r in enumerate(rfs):
        shape = "x".join(str(s) for s in r.shape)
        line = f"{k:>3}  {r.name:<24} {shape:<16} {r.rf:>5} {r.jump:>5} {r.offset[0]:>12g}"
        if paper:
            line += f" {paper[k]:>9}"
        print(line)
    if paper:
        print(
            "* the paper's list (3, 5, 9, ..., 637) leaves the max pools out; RF here includes them."
        )
    return 0
