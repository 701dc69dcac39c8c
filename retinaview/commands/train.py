"""``retinaview train``: train a grader on synthetic images or an image folder; resumable."""

from __future__ import annotations

import argparse
import os
import sys
import time

from retinaview.train.options import ARCHITECTURE_NAMES, LOSSES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a DR grader (synthetic data or a labelled image folder)",
        description=(
            "Train a DR grader. Writes RUN_DIR/last.pt (resumable), RUN_DIR/best.pt (best validation "
            "QWK) and RUN_DIR/metrics.jsonl. Under torchrun --nproc_per_node=N the same command uses "
            "DistributedDataParallel. Ctrl-C or SIGTERM saves last.pt and exits."
        ),
    )
    p.add_argument(
        "--task",
        choices=("grading", "vessels"),
        default="grading",
        help="grading: a DR grader (default); vessels: a DRIU vessel segmentation network trained on "
        "synthetic photographs and their vessel masks",
    )
    p.add_argument(
        "--arch",
        default=None,
        help=f"one of {', '.join(ARCHITECTURE_NAMES)} (default paper17; driu for --task vessels)",
    )
    vessels = p.add_argument_group("vessel networks (--task vessels)")
    vessels.add_argument(
        "--width", type=float, default=0.25, help="channel width factor (1.0 = DRIU)"
    )
    vessels.add_argument("--size", type=int, default=512, help="model input side in px (512)")
    vessels.add_argument("--crop", type=int, default=128, help="training crop side in px (128)")
    vessels.add_argument(
        "--vessel-loss", choices=("balanced", "bce"), default="balanced", help="(balanced: HED's)"
    )
    vessels.add_argument(
        "--rgb",
        action="store_true",
        help="feed the photograph (paper chain), not the vessels chain",
    )
    p.add_argument(
        "--data", required=True, help="synth:N[:SEED] or an image folder with labels CSV"
    )
    p.add_argument("--labels", help="labels CSV of --data (default: labels.csv etc. in the folder)")
    p.add_argument(
        "--val",
        help="validation source: synth:M:SEED or a folder (default: synth:N/10:SEED+1000 for "
        "synthetic data, a patient split of a folder)",
    )
    p.add_argument("--val-labels", help="labels CSV of --val")
    p.add_argument("--val-fraction", type=float, default=0.1, help="patient split (default 0.1)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--batch", type=int, default=15, help="images per step and process (15)")
    p.add_argument("--val-batch", type=int, help="validation batch (default --batch)")
    p.add_argument("--lr", type=float, help="learning rate (3e-4; 1e-3 for --task vessels)")
    p.add_argument("--lr-steps", default="", help="epochs after which lr drops, e.g. 20,40")
    p.add_argument("--lr-gamma", type=float, default=0.1, help="factor at each lr step (0.1)")
    p.add_argument("--loss", choices=tuple(LOSSES), default="kappa")
    p.add_argument(
        "--balance",
        default="none",
        help="class balancing: none, equal, or 5 proportions such as 0.5,0.0625,0.125,0.0625,0.25",
    )
    p.add_argument(
        "--fresh",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="synthetic training data: new images every epoch (default on)",
    )
    p.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=True, help="(default on)"
    )
    p.add_argument("--image-size", type=int, help="synthetic image size (default: model input)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--workers", type=int, help="data-loader processes (default 1 on <= 4 cores)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on GPU")
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="channels-last memory format (default on: faster on CPU)",
    )
    p.add_argument("--max-minutes", type=float, help="stop cleanly (and save) after this long")
    p.add_argument(
        "--save-every-minutes", type=float, default=10.0, help="mid-epoch checkpoints (10)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def _steps(text: str) -> tuple[int, ...]:
    from retinaview.core.common.errors import DataError

    if not text:
        return ()
    try:
        return tuple(sorted(int(v) for v in text.split(",") if v.strip()))
    except ValueError:
        raise DataError(f"--lr-steps {text}: expected epoch numbers such as 20,40") from None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class ProgressLine:
    """One line on stderr rewritten with \\r (at most twice a second); epoch summaries on their own line."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.last = 0.0
        self.width = 0

    def __call__(self, ev) -> None:
        if ev.kind == "step" and ev.message:
            self._line(ev.message, final=True)
            return
        if ev.kind == "step":
            now = time.monotonic()
            if now - self.last < 0.5 and ev.step != ev.total_steps:
                return
            self.last = now
            text = (
                f"epoch {ev.epoch + 1}/{ev.epochs} step {ev.step}/{ev.total_steps} "
                f"loss {ev.loss:.4f} QWK {ev.qwk:.3f} {ev.images_per_s:.2f} img/s "
                f"ETA {_clock(ev.eta_s)}"
            )
            self._line(text, final=False)
        elif ev.kind in ("epoch", "done"):
            self._line(ev.message, final=True)

    def end_line(self) -> None:
        """Finish a half-written progress line so that an error message starts on its own line."""
        if self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0

    def _line(self, text: str, final: bool) -> None:
        pad = " " * max(self.width - len(text), 0)
        self.stream.write("\r" + text + pad + ("\n" if final else ""))
        self.stream.flush()
        self.width = 0 if final else len(text)


def check_output_folder(folder: str) -> None:
    """The run folder can be written (checked before any work, in one line otherwise)."""
    from retinaview.core.common.paths import check_output_folder as check

    check(folder)


def run_vessels(args) -> int:
    """``retinaview train --task vessels``: `retinaview.train.vessels.train_vessels`."""
    from retinaview.train.vessels import VesselTrainConfig, train_vessels

    n_val = "synth:20:1000"
    cfg = VesselTrainConfig(
        out=args.out,
        arch=args.arch or "driu",
        width=args.width,
        chain="paper" if args.rgb else "vessels",
        data=args.data,
        val=args.val or n_val,
        size=args.size,
        crop=args.crop,
        batch=args.batch,
        epochs=args.epochs,
        lr=args.lr if args.lr is not None else 1e-3,
        lr_steps=_steps(args.lr_steps),
        lr_gamma=args.lr_gamma,
        loss=args.vessel_loss,
        seed=args.seed,
        resume=args.resume,
        threads=args.threads,
        device=args.device,
        max_minutes=args.max_minutes,
        save_every_minutes=args.save_every_minutes,
    )
    cfg.check()
    check_output_folder(args.out)
    say = (
        None
        if args.quiet
        else (lambda text: print(f"\r{text}", end="", file=sys.stderr, flush=True))
    )
    result = train_vessels(cfg, progress=say)
    if say is not None:
        print(file=sys.stderr)
    if result["status"] != "done":
        print(
            f"retinaview: {result['status']}; continue with --resume --out {args.out}",
            file=sys.stderr,
        )
    return {"interrupted": 130, "terminated": 143}.get(result["status"], 0)


def run(args) -> int:
    from retinaview.train import options

    if args.task == "vessels":
        return run_vessels(args)
    fields = dict(
        out=args.out,
        arch=args.arch or "paper17",
        data=args.data,
        val=args.val,
        labels=args.labels,
        val_labels=args.val_labels,
        val_fraction=args.val_fraction,
        epochs=args.epochs,
        batch=args.batch,
        val_batch=args.val_batch,
        lr=args.lr if args.lr is not None else 3e-4,
        lr_steps=_steps(args.lr_steps),
        lr_gamma=args.lr_gamma,
        loss=args.loss,
        balance=args.balance,
        fresh=args.fresh,
        augment=args.augment,
        image_size=args.image_size,
        seed=args.seed,
        resume=args.resume,
        threads=args.threads,
        workers=args.workers,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        max_minutes=args.max_minutes,
        save_every_minutes=args.save_every_minutes,
        command="retinaview " + " ".join(sys.argv[1:]),
    )
    # Checked before torch loads: a bad option costs no start-up time.
    options.check(fields)
    check_output_folder(args.out)
    from retinaview.train.trainer import TrainConfig, train

    config = TrainConfig(**fields)
    rank = int(os.environ.get("RANK", "0"))
    progress = None if args.quiet or rank != 0 else ProgressLine()
    try:
        result = train(config, progress)
    except BaseException:
        if progress is not None:
            progress.end_line()
        raise
    if progress is None and rank == 0 and result.status != "done":
        print(f"retinaview: {result.message}", file=sys.stderr)
    if result.status == "interrupted":
        return 130
    if result.status == "terminated":
        return 143
    return 0
