"""Hold a Dask LocalCluster open for bench_passes.py's ``dask_existing`` case.

  python benchmarks/dask_cluster.py --workers 2

Starts ``--workers`` single-threaded worker processes, prints one JSON line
(``{"address": ..., "pid": ...}``) and serves until its stdin is closed, then shuts the
cluster down. It runs as its own process, not inside the harness, so that the harness stays
small (a runner's ru_maxrss starts at its parent's RSS) and the cluster's memory and CPU
can be measured as a process tree of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        print(json.dumps({"address": cluster.scheduler_address, "pid": os.getpid()}), flush=True)
        sys.stdin.read()  # until bench_passes.py closes the pipe (or dies)
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
