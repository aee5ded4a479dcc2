"""The 0.1 import path of ``write_preview`` (``windowed_classify.preview.write_preview``),
kept for scripts written against it; the preview lives in ``outputs/preview.py``."""

from .outputs.preview import write_preview

__all__ = ["write_preview"]
