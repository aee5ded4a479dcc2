"""Small files written atomically: a temporary name beside the target, then ``os.replace``.

Nothing half-written ever appears under the target's name; a failure is an OutputError
naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import OutputError


def replace_atomic(
    path: Path, write: Callable[[Path], object], *, durable: bool = False, what: str = ""
) -> None:
    """``write(temp)`` a file beside ``path``, then rename it to ``path``.

    ``durable`` syncs the file to disk before the rename; ``what`` names the file in the
    error ("the preview "). The temporary name keeps the suffix, which some writers go by.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")  # per process
    try:
        write(temp)
        if durable:
            with open(temp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {what}{path}: {exc}") from None


def write_text_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Write ``text`` to ``path``; ``durable`` also syncs it to disk before the rename."""
    replace_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"), durable=durable)


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
