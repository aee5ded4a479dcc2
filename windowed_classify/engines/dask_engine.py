"""The Dask engine: pass 1 and pass 2 on a Dask cluster, with exactly the local result.

``processing.engine: dask`` runs the same pipeline (api.py) through ``DaskExecutor``:

- the cluster: ``processing.scheduler`` is the address of a running scheduler, or ``local``
  to start a ``distributed.LocalCluster`` of ``processing.workers`` single-threaded processes;
- the model reaches each worker once: a worker plugin carries the model file's bytes (read
  by the client, so the workers need not see it) and each worker loads it at start-up, a
  restarted or late-joining worker too; tasks carry only the small ``PredictJob``;
- pass 1: tasks count groups of windows (passes/stats.py), the client merges: exact medians;
- pass 2: each task reads its window from the inputs, predicts it and returns only the
  predictor's small result; the client is the one writer, results arrive in any order, at
  most ``2 x worker threads`` windows are in flight so the client's memory stays flat;
- a worker that dies has its tasks recomputed elsewhere (Dask's own bookkeeping): tasks are
  pure functions of their window, so the output is identical.

The workers read the inputs themselves: every path or URL must mean the same file on them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from rasterio.windows import Window

from ..errors import ConfigError, EngineError
from ..inputs.windows import window_key
from ..models.load import load_model
from ..passes.executor import Executor, bounded, taker
from ..passes.stats import Counts, Task, count_task
from ..passes.window import PredictJob, Predictors

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with: pip install 'windowed_classify[dask]'"
CONNECT_TIMEOUT = "20s"  # to reach an existing scheduler


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

_MODELS: dict[str, Any] = {}  # model key -> model, one per worker process
_LOCK = threading.Lock()
_THREADS = threading.local()  # per worker thread: (model, Predictors) with open rasters
_OPEN: weakref.WeakSet[Predictors] = weakref.WeakSet()  # to close them between runs


def _model_key(model_path: Path) -> str:
    return str(model_path)


class ModelPlugin(WorkerPlugin):
    """Loads the model once per worker process, from the file's bytes shipped once.

    The client reads the model file, so the workers need not see it; a worker that starts
    later (restarted after a crash, or added by an adaptive cluster) gets the plugin too.
    """

    def __init__(self, model_path: Path, payload: bytes, env: dict[str, str]):
        self.key = _model_key(model_path)
        self.filename = model_path.name
        self.payload = payload
        self.env = env
        self.name = "windowed-classify-model-" + hashlib.sha256(payload).hexdigest()[:16]

    def setup(self, worker: Any) -> None:
        os.environ.update(self.env)  # GDAL's cache size: read at the first block read
        if "MALLOC_TRIM_THRESHOLD_" in os.environ:  # a nanny's worker (see local_cluster)
            relax_malloc()
        folder = Path(worker.local_directory) / self.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename  # the same name: load_model goes by the suffix
        path.write_bytes(self.payload)
        model = load_model(path)
        with _LOCK:
            _MODELS[self.key] = model

    def teardown(self, worker: Any) -> None:
        with _LOCK:
            _MODELS.pop(self.key, None)
            for predictors in _OPEN:
                predictors.close()


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
            dashboard_address=None,
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


def _predictor(job: PredictJob) -> Any:
    """This thread's predictor for ``job``: the process's model, the thread's own rasters."""
    key = _model_key(job.model_path)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:  # the plugin is gone (unregistered mid-run): read the path
            model = _MODELS[key] = load_model(job.model_path)
    slot = getattr(_THREADS, "slot", None)
    if slot is None or slot[0] is not model:
        if slot is not None:
            slot[1].close()
        slot = _THREADS.slot = (model, Predictors(model))
        with _LOCK:
            _OPEN.add(slot[1])
    return slot[1].get(job)


def _worker_address() -> str:
    from distributed import get_worker

    return str(get_worker().address)


def predict_window(job: PredictJob, key: tuple[int, int, int, int]) -> tuple[Any, str, float]:
    """Pass 2 on a worker: one window -> (the predictor's result, worker, seconds busy)."""
    start = time.perf_counter()
    result = _predictor(job)(Window(*key))
    return result, _worker_address(), time.perf_counter() - start


def count_on_worker(task: Task) -> tuple[Counts, str, float]:
    """Pass 1 on a worker: count one group of windows of one layer."""
    start = time.perf_counter()
    counts = count_task(task)
    return counts, _worker_address(), time.perf_counter() - start


# ----------------------------------------------------------------------------- on the client


class DaskExecutor(Executor):
    """Runs both passes on a Dask cluster; this process merges statistics and writes."""

    banded_stats = False  # the standalone plan: small counts cross the network

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
            env = {k: os.environ[k] for k in ("GDAL_CACHEMAX",) if k in os.environ}
            plugin = ModelPlugin(Path(model_path), Path(model_path).read_bytes(), env)
            self.client.register_plugin(plugin)
            self.plugin_name = plugin.name
            self.address = str(self.client.scheduler.address)
        except BaseException:
            self.close()
            raise
        log.info("dask engine: %s, %d worker(s)", self.address, len(self._nthreads()))

    def _nthreads(self) -> dict[str, int]:
        return dict(self.client.nthreads())

    def _inflight(self) -> int:
        return max(4, 2 * sum(self._nthreads().values()))

    @property
    def stats_layers(self) -> int:  # type: ignore[override]
        """Enough layers in pass 1 that their stages' tasks keep every worker busy."""
        return max(2, self._inflight())

    def _account(self, worker: str, kind: str, pixels: int, seconds: float) -> None:
        row = self.per_worker.setdefault(
            worker,
            {"windows": 0, "pixels": 0, "seconds": 0.0, "pass1_tasks": 0, "pass1_seconds": 0.0},
        )
        if kind == "pass2":
            row["windows"] += 1
            row["pixels"] += pixels
            row["seconds"] += seconds
        else:
            row["pass1_tasks"] += 1
            row["pass1_seconds"] += seconds

    # ------------------------------------------------------------------------- passes

    def _first_done(self, pending: Collection[Any]) -> Iterable[Any]:
        return self.distributed.wait(list(pending), return_when="FIRST_COMPLETED").done

    def count(self, take: Callable[[], Task | None]) -> Iterator[tuple[Task, Counts]]:
        """Pass 1: tasks count groups of windows on the workers; only counts come back."""

        def submit(task: Task) -> Any:
            return self.client.submit(count_on_worker, task, pure=False)

        for task, future in bounded(submit, take, self._inflight(), self._first_done):
            counts, worker, seconds = _result(future, self.distributed)
            future.release()
            self._account(worker, "pass1", counts.pixels, seconds)
            yield task, counts

    def imap(
        self, job: PredictJob, windows: Iterable[Window], observe: Any = None
    ) -> Iterator[tuple[Window, Any]]:
        """Pass 2: each task reads, predicts and returns one window's small result."""
        if observe is not None:
            raise ValueError("the Dask engine cannot observe windows in this process")
        prefix = f"predict-{job.token[:8]}"
        # the job (an AOA model carries its training rows) travels once to each worker
        shared = self.client.scatter(job, broadcast=True, hash=False)

        def submit(window: Window) -> Any:
            key = window_key(window)
            return self.client.submit(
                predict_window, shared, key, key=f"{prefix}-{key[1]}-{key[0]}", pure=False
            )

        limit = self._inflight()
        try:
            for window, future in bounded(submit, taker(windows), limit, self._first_done):
                result, worker, seconds = _result(future, self.distributed)
                future.release()
                self._account(worker, "pass2", int(window.width * window.height), seconds)
                yield window, result
        finally:
            shared.release()

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
