"""The engine a run asks for: its class (what ``check`` describes) and the running engine.

Dask itself is imported only when a Dask engine starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.load import load_model
from ..passes.executor import Executor
from .dask_engine import DaskExecutor
from .local import ProcessExecutor, SerialExecutor, ThreadExecutor


def executor_class(engine: str, workers: int) -> type[Executor]:
    """The engine that runs ``workers`` asked as ``processing.engine``: Dask whatever the
    count; otherwise serial for 1; ``local`` is threads. ``auto`` is settled before a run
    (api.choose): never Dask, so it is taken as its heavier choice, processes."""
    if engine == "dask":
        return DaskExecutor
    if workers <= 1:
        return SerialExecutor
    if engine in ("threads", "local"):
        return ThreadExecutor
    return ProcessExecutor


def make_executor(
    model_path: Path,
    workers: int,
    engine: str = "processes",
    model: Any | None = None,
    scheduler: str = "local",
) -> Executor:
    """The engine for ``workers`` (``executor_class``); ``model`` is reused where it can be.

    ``dask`` runs on a Dask cluster (``scheduler``: an address, or ``local`` to start one of
    ``workers`` processes).
    """
    kind = executor_class(engine, workers)
    if kind is DaskExecutor:
        return DaskExecutor(model_path, workers, scheduler)
    if kind is SerialExecutor:
        return SerialExecutor(model if model is not None else load_model(model_path))
    if kind is ThreadExecutor:
        return ThreadExecutor(model if model is not None else load_model(model_path), workers)
    return ProcessExecutor(model_path, workers)
