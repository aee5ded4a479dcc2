"""Small files written atomically: a temporary name beside the target, then ``os.replace``.

Nothing half-written ever appears under the target's name; a failure is an OutputError
naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import OutputError


def write_text_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Write ``text`` to ``path``; ``durable`` also syncs it to disk before the rename."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.partial")  # unique per process
    try:
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from None


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
