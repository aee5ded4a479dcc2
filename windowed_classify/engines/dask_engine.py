"""The Dask engine: pass 1 and pass 2 on a Dask cluster, with exactly the local result.

``processing.engine: dask`` runs the same passes (api.py) through ``DaskExecutor``:

- the cluster: ``processing.scheduler`` is the address of a running scheduler, or ``local``
  to start a ``distributed.LocalCluster`` of ``processing.workers`` single-threaded processes;
- the model reaches each worker once: a worker plugin carries the model file's bytes (read
  by the client, so the workers need not see it) and each worker loads it at start-up, a
  restarted or late-joining worker too; a job travels once to each worker (a broadcast), its
  items are small;
- each worker keeps what it reads for the statistics' finish and the deferred fills on its
  own disk (its local directory); the items that read those files are pinned to it, and a
  worker that is gone before they ran is reported (``WorkerLost``) so that the passes redo
  its part elsewhere. A worker is known by its address and its folder (``worker_id``): one
  restarted by its nanny at the same address has a new, empty folder, and is not taken for
  the worker whose files are lost;
- results arrive in any order; this process merges the counts and is the one writer; at most
  ``2 x worker threads`` items are in flight, so its memory stays flat;
- a worker that dies mid-item has the item recomputed elsewhere (Dask's own bookkeeping).

The workers read the inputs themselves: every path or URL must mean the same file on them.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EngineError
from ..inputs.readahead import READ_AHEAD_VARIABLE
from ..models.load import load_model
from ..passes.executor import Executor, Job, Pin, WorkerLost, bounded
from ..passes.window import PredictJob
from ..passes.worker import WorkerState

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with: pip install 'windowed_classify[dask]'"
CONNECT_TIMEOUT = "20s"  # to reach an existing scheduler
WAIT_SECONDS = 2.0  # between looks at whether a pinned item's worker is still there


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            f"processing.engine dask needs the packages dask and distributed ({exc.name} is "
            f"missing): {INSTALL_HINT}"
        ) from None
    return distributed


# ----------------------------------------------------------------------------- on the workers

try:  # an optional dependency: DaskExecutor says how to install it when it is missing
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - exercised only without the extra
    WorkerPlugin = object  # type: ignore[misc,assignment]

_STATE: WorkerState | None = None  # this worker process's
_LOCK = threading.Lock()


def worker_id(address: str, local_directory: str) -> str:
    """A worker process's id: its address and its own folder's name. A worker that its nanny
    restarts after a crash may come back at the same address (a fixed ``--worker-port``) but
    always with a new, empty folder: the id tells it from the worker whose files are lost."""
    return f"{address}#{Path(local_directory).name}"


def address_of(worker: str) -> str:
    """The address of a worker id (what Dask pins a task to)."""
    return worker.split("#", 1)[0]


def _worker_state(worker: Any) -> WorkerState:
    global _STATE
    with _LOCK:
        if _STATE is None:
            folder = str(worker.local_directory)
            _STATE = WorkerState(worker_id(str(worker.address), folder), Path(folder))
        return _STATE


class ModelPlugin(WorkerPlugin):
    """Loads the model once per worker process, from the file's bytes shipped once.

    The client reads the model file, so the workers need not see it; a worker that starts
    later (restarted after a crash, or added by an adaptive cluster) gets the plugin too.
    """

    def __init__(self, model_path: Path, payload: bytes, env: dict[str, str]):
        self.key = str(model_path)
        self.filename = model_path.name
        self.payload = payload
        self.env = env
        self.name = "windowed-classify-model-" + hashlib.sha256(payload).hexdigest()[:16]

    def setup(self, worker: Any) -> None:
        os.environ.update(self.env)  # GDAL's cache size, read at the first block read; read-ahead
        if "MALLOC_TRIM_THRESHOLD_" in os.environ:  # a nanny's worker (see local_cluster)
            relax_malloc()
        folder = Path(worker.local_directory) / self.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename  # the same name: load_model goes by the suffix
        path.write_bytes(self.payload)
        _worker_state(worker).provide(self.key, load_model(path))

    def teardown(self, worker: Any) -> None:
        state = _STATE
        if state is not None:
            state.close()


def local_cluster(distributed: Any, workers: int) -> Any:
    """A LocalCluster of ``workers`` single-threaded processes, with glibc's own malloc.

    Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
    mmap threshold at 128 KB: every window-sized array (and pass 1's counters) is then mmap'ed
    and unmapped again, and the page faults made both passes 1.3-1.5x slower per core than
    in the local engine (measured: 5000^2 x 16, 2 workers). Without the variable the workers
    allocate as this process does.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return distributed.LocalCluster(
            n_workers=max(1, workers),
            threads_per_worker=1,
            processes=True,
            # the scheduler's HTTP server starts whatever the dashboard setting (its default
            # port 8787 clashes with any other cluster): a free port, and no dashboard
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
        )


def relax_malloc() -> None:
    """On a worker started with MALLOC_TRIM_THRESHOLD_ (an existing cluster's nanny), raise
    glibc's mmap and trim thresholds back (32 and 64 MB): large arrays are reused, not
    mmap'ed afresh each time. Best effort: only where glibc's mallopt exists."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError, TypeError) as exc:
        log.debug("dask engine: cannot relax malloc: %s", exc)


def run_on_worker(job: Job, item: Any) -> tuple[Any, str, float]:
    """One item on this worker: (its result, the worker, seconds busy)."""
    from distributed import get_worker

    worker = get_worker()
    start = time.perf_counter()
    result = job(item, _worker_state(worker))
    return result, str(worker.address), time.perf_counter() - start


def forget_on_worker(token: str, dask_worker: Any = None) -> None:
    """Close a finished job's files on this worker and remove its spills from its disk
    (``client.run`` gives the worker as ``dask_worker``)."""
    state = _worker_state(dask_worker)
    state.forget(token)
    if state.scratch is not None:
        shutil.rmtree(state.scratch / token, ignore_errors=True)


# ----------------------------------------------------------------------------- on the client


class DaskExecutor(Executor):
    """Runs the passes' jobs on a Dask cluster; this process merges counts and writes."""

    name = "dask"
    pins = True

    def __init__(self, model_path: Path, workers: int, scheduler: str = "local"):
        self.distributed = distributed = _import_distributed()
        self.scheduler = scheduler
        self.cluster = None
        self.plugin_name: str | None = None
        self.per_worker: dict[str, dict[str, float]] = {}
        self.n_workers_seen = 0
        self.address = scheduler
        try:
            if scheduler == "local":
                self.cluster = local_cluster(distributed, workers)
                self.client = distributed.Client(self.cluster)
            else:
                try:
                    self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
                except (OSError, TimeoutError) as exc:
                    raise ConfigError(
                        f"processing.scheduler: cannot reach the Dask scheduler at {scheduler}: "
                        f"{exc}"
                    ) from None
            shared = ("GDAL_CACHEMAX", READ_AHEAD_VARIABLE)  # read by GDAL, by readahead.py
            env = {k: os.environ[k] for k in shared if k in os.environ}
            plugin = ModelPlugin(Path(model_path), Path(model_path).read_bytes(), env)
            self.client.register_plugin(plugin)
            self.plugin_name = plugin.name
            self.address = str(self.client.scheduler.address)
        except BaseException:
            self.close()
            raise
        self.workers = max(1, sum(self._nthreads().values()))
        log.info("dask engine: %s, %d worker(s)", self.address, len(self._nthreads()))

    def _nthreads(self) -> dict[str, int]:
        return dict(self.client.nthreads())

    def _inflight(self) -> int:
        return max(4, 2 * sum(self._nthreads().values()))

    def alive(self) -> set[str]:
        """The ids of the workers now (address and folder: see ``worker_id``)."""
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except TypeError:  # a distributed older than the n_workers argument: all workers
            info = self.client.scheduler_info()
        return {
            worker_id(address, str(row.get("local_directory", "")))
            for address, row in info.get("workers", {}).items()
        }

    def _account(self, worker: str, job: Job, item: Any, seconds: float) -> None:
        row = self.per_worker.setdefault(
            worker,
            {"windows": 0, "pixels": 0, "seconds": 0.0, "pass1_tasks": 0, "pass1_seconds": 0.0},
        )
        if isinstance(job, PredictJob):
            row["windows"] += 1
            row["pixels"] += item[1][2] * item[1][3]  # (index, (col, row, width, height))
            row["seconds"] += seconds
        else:  # pass 1's counting and selection, the deferred fills
            row["pass1_tasks"] += 1
            row["pass1_seconds"] += seconds

    def run(self, job: Job, items: Iterable[Any], pin: Pin | None = None) -> Iterator[Any]:
        shared = self.client.scatter(job, broadcast=True, hash=False)
        pinned: dict[Any, str] = {}  # future -> the worker it must run on
        kind = type(job).__name__.lower().removesuffix("job")  # task keys: predict-..., fill-...
        # keys unique to this call: a job run again (after a lost worker) must not meet the
        # scheduler's state of an earlier call's task of the same key (its error, say)
        batch = uuid.uuid4().hex[:8]
        numbers = itertools.count()

        def submit(item: Any) -> Any:
            where = pin(item) if pin is not None else None
            options = (
                {"workers": [address_of(where)], "allow_other_workers": False} if where else {}
            )
            key = f"{kind}-{job.token[:8]}-{batch}-{next(numbers)}"
            future = self.client.submit(run_on_worker, shared, item, pure=False, key=key, **options)
            if where:
                pinned[future] = where
            return future

        def first_done(pending: Collection[Any]) -> Iterable[Any]:
            while True:
                try:
                    done = self.distributed.wait(
                        list(pending), timeout=WAIT_SECONDS, return_when="FIRST_COMPLETED"
                    ).done
                except TimeoutError:
                    done = set()
                if done:
                    return done
                waiting = {pinned[f] for f in pending if f in pinned}
                gone = waiting - self.alive()
                if gone:  # an item only that worker can run: the passes redo its part
                    raise WorkerLost(sorted(gone)[0])

        try:
            for item, future in bounded(submit, items, self._inflight(), first_done):
                result, worker, seconds = _result(future, self.distributed)
                pinned.pop(future, None)
                future.release()
                self._account(worker, job, item, seconds)
                yield item, self.took(result)
        finally:
            shared.release()

    def forget(self, token: str, folder: Path | None) -> None:
        super().forget(token, folder)
        try:
            self.client.run(forget_on_worker, token)
        except Exception as exc:  # a worker gone: its disk is its own business
            log.debug("dask engine: cannot clean %s on the workers: %s", token, exc)

    # ------------------------------------------------------------------------- report, close

    def describe(self) -> dict[str, Any]:
        workers = {}
        for address, row in sorted(self.per_worker.items()):
            rate = row["pixels"] / row["seconds"] if row["seconds"] > 0 else None
            workers[address] = {
                "windows": int(row["windows"]),
                "pixels": int(row["pixels"]),
                "busy_seconds": round(row["seconds"], 3),
                "megapixels_per_second": round(rate / 1e6, 3) if rate else None,
                "pass1_tasks": int(row["pass1_tasks"]),
                "pass1_busy_seconds": round(row["pass1_seconds"], 3),
            }
        return {
            "engine": "dask",
            "scheduler": "local" if self.cluster is not None else self.scheduler,
            "scheduler_address": self.address,
            "workers": self.n_workers_seen or len(workers),
            "dask_workers": workers,
        }

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            try:
                self.n_workers_seen = len(self._nthreads())
                if self.plugin_name is not None:  # a long-lived cluster forgets this model
                    client.unregister_worker_plugin(self.plugin_name)
            except Exception as exc:  # closing must not hide the run's own outcome
                log.debug("dask engine: clean-up failed: %s", exc)
            client.close()
        if self.cluster is not None:
            self.cluster.close()


def _result(future: Any, distributed: Any) -> Any:
    """A task's result; a task whose workers keep dying is one clear error, not a traceback."""
    try:
        return future.result()
    except distributed.KilledWorker as exc:
        tries = getattr(exc, "allowed_failures", None) or "several"
        raise EngineError(
            f"Dask workers died while running task {future.key} ({tries} tries): out of "
            "memory, or killed? See the workers' logs"
        ) from None
