"""What a worker keeps between the items of a job: the model (loaded once per process), open
rasters (one set per thread: GDAL datasets are not for concurrent use), and its spill files
(one set per process). Every engine gives its jobs one of these per worker process: the
local engines one for this process, worker processes and Dask workers one each."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..inputs.layers import Layer
from ..inputs.reader import StackReader
from ..models.load import load_model
from .spill import Spills

T = TypeVar("T")


class WorkerState:
    """One worker process's resources. ``id`` names it in results (which worker's spill
    files hold an item's keys); ``scratch`` is where its own spills go when a job asks for
    the worker's disk (a Dask worker's local directory)."""

    def __init__(self, worker_id: str, scratch: Path | None = None, model: Any | None = None):
        self.id = worker_id
        self.scratch = scratch
        self._models: dict[str, Any] = {}
        self._preloaded = model
        self._lock = threading.Lock()
        self._local = threading.local()
        # every reader opened, with the thread's table that holds it (to close and forget it)
        self._readers: list[tuple[str, StackReader, dict[str, StackReader]]] = []
        self._spills: dict[tuple[str, Path], Spills] = {}
        self._memos: dict[tuple[str, str], Any] = {}

    def provide(self, path: str, model: Any) -> None:
        """The model a job names by ``path``, loaded elsewhere (a Dask worker's plugin loads
        it from bytes the client sent: the worker may not see the path)."""
        with self._lock:
            self._models[path] = model

    def model(self, path: Path) -> Any:
        """The model of ``path``, loaded once per process (a model given at start-up is used
        as it is)."""
        if self._preloaded is not None:
            return self._preloaded
        key = str(path)
        with self._lock:
            if key not in self._models:
                self._models[key] = load_model(path)
            return self._models[key]

    def reader(self, token: str, layers: Sequence[Layer]) -> StackReader:
        """This thread's open rasters for a job's layers (``token`` names the job and the set:
        one job may read different sets of layers, each gets its own)."""
        readers: dict[str, StackReader] | None = getattr(self._local, "readers", None)
        if readers is None:
            readers = self._local.readers = {}
        reader = readers.get(token)
        if reader is None:
            reader = readers[token] = StackReader(layers)
            with self._lock:
                self._readers.append((token, reader, readers))
        return reader

    def spills(self, token: str, folder: Path | None) -> Spills:
        """This process's spill files for a job (``folder`` None: the worker's scratch)."""
        root = folder if folder is not None else self.scratch
        if root is None:
            raise RuntimeError("no folder for the spill files")  # a job error, not a user's
        key = (token, root)
        with self._lock:
            if key not in self._spills:
                self._spills[key] = Spills(root / token, self.id)
            return self._spills[key]

    def memo(self, token: str, name: str, make: Callable[[], T]) -> T:
        """A value a job makes once per process (a label -> code mapper, say)."""
        key = (token, name)
        with self._lock:
            if key not in self._memos:
                self._memos[key] = make()
            return self._memos[key]

    def forget(self, token: str) -> None:
        """Close what a finished job opened (its readers, tokens starting with ``token``, and
        its spill files); no thread may be using them."""
        with self._lock:
            keep = []
            for name, reader, table in self._readers:
                if name.startswith(token):
                    reader.close()
                    table.pop(name, None)
                else:
                    keep.append((name, reader, table))
            self._readers = keep
            for key in [k for k in self._spills if k[0] == token]:
                self._spills.pop(key).close()
            for memo in [k for k in self._memos if k[0] == token]:
                del self._memos[memo]

    def close(self) -> None:
        with self._lock:
            for name, reader, table in self._readers:
                reader.close()
                table.pop(name, None)
            self._readers.clear()
            for spills in self._spills.values():
                spills.close()
            self._spills.clear()
