"""windowed_classify: apply a classifier to a covariate raster stack, window by window."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import run  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .errors import UserError  # noqa: E402

__all__ = ["Config", "UserError", "__version__", "load_config", "run"]
