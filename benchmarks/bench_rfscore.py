"""Run the RF decomposition benchmark: ``python -m benchmarks.bench_rfscore`` (same as ``retinaview bench``)."""

from retinaview.core.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
