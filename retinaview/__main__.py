"""``python -m retinaview`` and the entry point of the frozen app (packaging/retinaview.spec)."""

import multiprocessing
import sys

from retinaview.cli import main

if __name__ == "__main__":
    # First thing in a frozen app: a spawned child (DataLoader workers, torchrun) must run its task here,
    # not open another window.
    multiprocessing.freeze_support()
    sys.exit(main())
