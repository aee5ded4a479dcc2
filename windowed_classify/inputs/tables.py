"""Tables users bring (points to sample, training rows): CSV read exactly as written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InputError


def read_csv_text(path: Path, what: str) -> pd.DataFrame:
    """Every column as text, exactly as written (no NA guessing); a BOM is dropped.
    ``what`` names the file in errors ("points file")."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the {what} {path} as CSV: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc}") from None
