"""Remote layers read at once on a bounded pool of I/O threads, apart from the workers.

A window of remote layers (``/vsicurl/``, ``/vsis3/``, URLs, STAC assets) costs a request or
two per file, and the time of a request is mostly the network's: read one after another, 100
layers are 100 round trips. Here a reader hands its remote files to this process's pool of
I/O threads, which read (and open) them at once while the reader's own thread reads its local
files as before; GDAL releases the GIL while it reads. Local files never use the pool.

- Bounded: at most ``processing.read_ahead`` threads per process, however many workers share
  it (the threads of a local run share one pool; each worker process and each Dask worker has
  its own). ``0`` reads every file in the reader's thread, one after another.
- A dataset handle is used by one thread at a time: a reader's file is one task of a window,
  and the reader waits for every task of a window before it returns, raises or closes.
- Memory: the tasks write into the window's own array (a float32 file is read straight into
  it); a file of another type costs one array of its type per read in flight, as before.

The setting reaches worker processes through the environment (``READ_AHEAD_VARIABLE``, set
by the run before it starts them, like ``GDAL_CACHEMAX``).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..config import ProcessingConfig

T = TypeVar("T")

READ_AHEAD_VARIABLE = "WINDOWED_CLASSIFY_READ_AHEAD"
DEFAULT: int = ProcessingConfig.read_ahead  # the config key's default, written once there

_pool: cf.ThreadPoolExecutor | None = None
_size = 0
_lock = threading.Lock()
_inside = threading.local()  # set in the pool's threads: a task never waits for the pool


def threads() -> int:
    """This process's setting: the environment's (a run sets it), else the config default."""
    text = os.environ.get(READ_AHEAD_VARIABLE, "")
    try:
        return max(0, int(text)) if text.strip() else DEFAULT
    except ValueError:
        return DEFAULT


def configure(n: int) -> None:
    """Set this process's read-ahead (and its future worker processes')."""
    os.environ[READ_AHEAD_VARIABLE] = str(max(0, int(n)))


def _mark() -> None:
    _inside.flag = True


def _pool_now() -> cf.ThreadPoolExecutor | None:
    """The pool of the current size (made at first use, made again when the setting
    changed); None when read-ahead is off, or in one of the pool's own threads."""
    global _pool, _size
    n = threads()
    if n <= 0 or getattr(_inside, "flag", False):
        return None
    with _lock:
        if _pool is None or _size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)  # its running tasks finish; new ones go to the new
            _pool = cf.ThreadPoolExecutor(n, "read-ahead", initializer=_mark)
            _size = n
        return _pool


def _forget_after_fork() -> None:
    global _pool, _size
    _pool, _size = None, 0  # the threads stayed in the parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def concurrently(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Every call's result, in order: the first in this thread, the others on the pool at
    once (one after another when read-ahead is off). When calls fail, the first failure in
    order is raised, once no call is running any more (a task may be using a dataset handle
    that the caller closes next)."""
    pool = _pool_now() if len(calls) > 1 else None
    if pool is None:
        return [call() for call in calls]
    futures = [pool.submit(call) for call in calls[1:]]
    try:
        first = calls[0]()
    except BaseException:
        _settle(futures, cancel=True)
        raise
    _settle(futures, cancel=False)
    return [first, *(f.result() for f in futures)]


def _settle(futures: Sequence[cf.Future], cancel: bool) -> None:
    """Return once no future is running: those not started yet are cancelled when ``cancel``,
    when one fails, or when the wait is interrupted (Ctrl-C)."""
    try:
        if not cancel:
            _, pending = cf.wait(futures, return_when=cf.FIRST_EXCEPTION)
            cancel = bool(pending)  # one failed: the others' reads are not needed
    except BaseException:
        cancel = True
        raise
    finally:
        if cancel:
            for f in futures:
                f.cancel()
            cf.wait(futures)
