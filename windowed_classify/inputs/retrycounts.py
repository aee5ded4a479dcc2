"""Retries of remote reads, counted: per reader (``RetryCounts``) and per process (``totals``).
The report's ``remote_retries`` adds them up (docs/remote.md, "Retries and errors")."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass
class RetryCounts:
    """Retries on one reader's calls: the tool's (of an open, of a window read) and GDAL's."""

    open_retries: int = 0
    read_retries: int = 0
    gdal_retries: int = 0
    head_retries: int = 0  # the HEAD that reads a file's identity (identity.py), asked again

    def add(self, other: RetryCounts) -> None:
        self.open_retries += other.open_retries
        self.read_retries += other.read_retries
        self.gdal_retries += other.gdal_retries
        self.head_retries += other.head_retries

    @property
    def total(self) -> int:
        return self.open_retries + self.read_retries + self.gdal_retries + self.head_retries

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


_TOTALS = RetryCounts()
_TOTALS_LOCK = threading.Lock()


def totals() -> RetryCounts:
    """Every retry counted in this process so far (all readers)."""
    with _TOTALS_LOCK:
        return RetryCounts(**asdict(_TOTALS))


def head_retried() -> None:
    """A HEAD for a file's identity asked again: counted in this process's totals."""
    tally(RetryCounts(), "head_retries", 1)


def tally(counts: RetryCounts, name: str, n: int) -> None:
    if n:
        setattr(counts, name, getattr(counts, name) + n)
        with _TOTALS_LOCK:
            setattr(_TOTALS, name, getattr(_TOTALS, name) + n)
