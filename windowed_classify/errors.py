"""User-facing errors: the message is what the user reads, so it names the culprit."""

from __future__ import annotations


def gdal_reason(exc: BaseException) -> str:
    """GDAL's own words for a rasterio error, on one line.

    rasterio raises "Read or write failed. See previous exception for details." with GDAL's
    message chained as its cause: the first message in the chain that is not such a pointer.
    """
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        text = " ".join(str(seen).split())
        if text and "previous exception" not in text:
            return text
        seen = seen.__cause__ or seen.__context__
    return " ".join(str(exc).split())


class UserError(Exception):
    """A problem with the user's config or inputs; printed as one line, no traceback."""


class ConfigError(UserError):
    """A config key is missing, unknown, or has a bad value."""


class InputError(UserError):
    """A covariate raster is missing, unreadable, or does not match the grid."""


class RemoteReadError(InputError):
    """A remote raster stayed unreadable through the retries (the server's answer or the
    network, not the file): pass 2 keeps its journal, so the run can be resumed."""


class ModelError(UserError):
    """The model cannot be loaded, has no schema, or predicts an unknown label."""


class OutputError(UserError):
    """The output cannot be written (exists, bad dtype/nodata, write failure)."""


class EngineError(UserError):
    """The execution engine failed (a Dask worker died again and again, say)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM in pass 2: the progress is kept in ``journal`` for --resume."""

    def __init__(self, journal: object):
        super().__init__(f"interrupted; resumable from {journal}")
        self.journal = journal
