"""Reading the CSV files users give (traces, histograms): normalised column names, checked numbers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.lengths import _MAX_SAMPLE_TOKENS  # noqa: F401

# ---------------------------------------------------------------- CSV reading helpers


def _key(name: str) -> str:
    """Normalised column name: 'Request tokens' -> 'request_tokens', ' TIMESTAMP' -> 'timestamp'."""
    return re.sub(r"[\s_\-]+", "_", str(name).strip().lower()).strip("_")


def _read_csv(path: str | Path, what: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read every column as text; return it with normalised column names and a key -> original map.

    Blank lines are dropped but the index keeps the file position, so data row i is line i + 2.
    """
    if not Path(path).is_file():
        raise InputError(f"{what} path", "an existing, readable file", str(path))
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} file", "a CSV header and rows", "empty file", where=str(path)) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        got = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise InputError(f"{what} file", "a readable UTF-8 CSV", got, where=str(path)) from None
    names = {_key(c): str(c).strip() for c in df.columns}
    df.columns = [_key(c) for c in df.columns]
    df = df[~(df.apply(lambda col: col.str.strip()) == "").all(axis=1)]
    if df.empty:
        raise InputError(f"{what} rows", "at least one data row after the header", 0, where=str(path))
    return df, names


def _columns(df: pd.DataFrame, names: dict[str, str], keys: tuple[str, ...], where: str, *,
             whole: bool, minimum: float | None, maximum: float | None = None) -> list[np.ndarray]:
    """Parse text columns to floats; the first bad value (by row, then column) raises naming its line.
    Whole-number columns (token counts) are capped at _MAX_SAMPLE_TOKENS unless ``maximum`` says otherwise."""
    if maximum is None and whole:
        maximum = _MAX_SAMPLE_TOKENS
    vals = np.column_stack([pd.to_numeric(df[k].str.strip(), errors="coerce").to_numpy(float) for k in keys])
    bad = ~np.isfinite(vals) | (vals < (-math.inf if minimum is None else minimum))
    if maximum is not None:
        bad |= vals > maximum
    if whole:
        bad |= vals != np.round(vals)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        expected = "a whole number" if whole else "a number"
        expected += "" if minimum is None else f" >= {minimum:g}"
        expected += "" if maximum is None else f" and <= {maximum:,.0f}"
        got, line = df[keys[c]].iloc[r].strip(), df.index[r] + 2
        raise InputError(names[keys[c]], expected, got, where=f"{where} line {line}")
    return [vals[:, j] for j in range(len(keys))]


def _times(df: pd.DataFrame, names: dict[str, str], key: str, where: str) -> np.ndarray:
    """Seconds: numbers as given, or ISO datetimes (any fraction digits) as seconds after the earliest."""
    text = df[key].str.strip()
    if not pd.isna(pd.to_numeric(text.iloc[0], errors="coerce")):
        return _columns(df, names, (key,), where, whole=False, minimum=None)[0]
    stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if stamps.isna().any():
        i = int(np.argmax(stamps.isna().to_numpy()))
        expected = "seconds or an ISO datetime like 2023-11-16 18:15:46.6805900"
        raise InputError(names[key], expected, text.iloc[i], where=f"{where} line {df.index[i] + 2}")
    return (stamps - stamps.min()).dt.total_seconds().to_numpy(dtype=float)


