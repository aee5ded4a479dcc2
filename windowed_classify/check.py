"""The 0.1 import path of ``check`` (``windowed_classify.check.check``), kept for scripts
written against it; the command lives in ``commands/check.py``."""

from .commands.check import CheckResult, check

__all__ = ["CheckResult", "check"]
