"""windowed_classify: apply a model to a covariate raster stack, window by window.

The names below are imported on first use, so that ``python -m windowed_classify --help``
(which imports this package first) loads neither numpy nor rasterio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .api import run
    from .config import Config, load_config
    from .errors import UserError

__all__ = ["Config", "UserError", "__version__", "load_config", "run"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from .api import run

        return run
    if name in ("Config", "load_config"):
        from . import config

        return getattr(config, name)
    if name == "UserError":
        from .errors import UserError

        return UserError
    raise AttributeError(f"module 'windowed_classify' has no attribute {name!r}")
