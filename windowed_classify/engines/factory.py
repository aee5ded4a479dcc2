"""``make_executor``: the engine a run asks for (Dask is imported only when asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.load import load_model
from ..passes.executor import Executor
from .local import ProcessExecutor, SerialExecutor, ThreadExecutor


def make_executor(
    model_path: Path,
    workers: int,
    engine: str = "processes",
    model: Any | None = None,
    scheduler: str = "local",
) -> Executor:
    """The engine for ``workers``: serial for 1; ``model`` is reused where it can be.

    ``dask`` runs on a Dask cluster (``scheduler``: an address, or ``local`` to start one of
    ``workers`` processes); ``local`` is the default local engine (threads).
    """
    if engine == "dask":
        from .dask_engine import DaskExecutor

        return DaskExecutor(model_path, workers, scheduler)
    if workers <= 1:
        return SerialExecutor(model if model is not None else load_model(model_path))
    if engine in ("threads", "local"):
        return ThreadExecutor(model if model is not None else load_model(model_path), workers)
    return ProcessExecutor(model_path, workers)
