"""Value checks shared by every layer: one place that turns a bad value into a one-line ``InputError``.

Each check takes the value, the field name the user knows (``workload.rate_rps``,
``engine_settings.token_budget``) and optionally where it came from (a file), and either returns
the value in its canonical type or raises ``InputError`` naming the field and what was expected.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from planner.errors import InputError, PlannerError

_REAL = (int, float, np.integer, np.floating)


def real(value: Any, field: str, where: str | None = None) -> float:
    """A finite real number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, _REAL):
        raise InputError(field, "a number", value, where=where)
    val = float(value)
    if not math.isfinite(val):
        raise InputError(field, "a finite number", value, where=where)
    return val


def positive(value: Any, field: str, where: str | None = None, *, allow_zero: bool = False,
             upper: float | None = None) -> float:
    """A finite number > 0 (>= 0 with ``allow_zero``), at most ``upper`` when given."""
    val = real(value, field, where)
    if val < 0 or (val == 0 and not allow_zero):
        raise InputError(field, "a number >= 0" if allow_zero else "a positive finite number", value, where=where)
    if upper is not None and val > upper:
        raise InputError(field, f"at most {upper:g}", value, where=where)
    return val


def fraction(value: Any, field: str, where: str | None = None) -> float:
    """A share in (0, 1]."""
    val = real(value, field, where)
    if not 0 < val <= 1:
        raise InputError(field, "a fraction in (0, 1]", value, where=where)
    return val


def whole(value: Any, field: str, minimum: int = 0, maximum: int | None = None, where: str | None = None) -> int:
    """A whole number in [minimum, maximum] (floats such as 4.0 are accepted, 4.5 and True are not)."""
    if isinstance(value, bool) or not isinstance(value, _REAL):
        raise InputError(field, "a whole number", value, where=where)
    val = float(value)
    if not math.isfinite(val) or val != round(val):
        raise InputError(field, "a whole number", value, where=where)
    if val < minimum or (maximum is not None and val > maximum):
        span = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise InputError(field, f"a whole number {span}", value, where=where)
    return int(val)


def one_of(value: Any, field: str, options: Iterable[str], where: str | None = None) -> str:
    """A string among ``options`` (case-insensitive, trimmed), returned lower-case."""
    opts = tuple(options)
    if not isinstance(value, str) or value.strip().lower() not in opts:
        raise InputError(field, f"one of {', '.join(opts)}", value, where=where)
    return value.strip().lower()


def mapping(value: Any, field: str, where: str | None = None) -> dict:
    """A mapping (``None`` reads as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(field, "a mapping", value, where=where)
    return value


def unknown_key(key: str, known: Iterable[str], where: str, prefix: str = "") -> None:
    """Raise for a key that is not among ``known``, with a did-you-mean."""
    allowed = sorted(known)
    hint = difflib.get_close_matches(str(key), allowed, n=1)
    did = f" (did you mean {prefix}{hint[0]}?)" if hint else f"; known: {', '.join(allowed)}"
    raise PlannerError(f"{where}: unknown key {prefix}{key}{did}")


def known_keys(raw: dict, known: Iterable[str], where: str, prefix: str = "") -> None:
    """Every key of ``raw`` is among ``known``."""
    allowed = set(known)
    for key in raw:
        if key not in allowed:
            unknown_key(str(key), allowed, where, prefix)


def finite_array(value: Any, field: str) -> np.ndarray:
    """A non-empty 1-D array of finite numbers."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(field, "a 1-D array of numbers", type(value).__name__) from None
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(field, "a non-empty 1-D array", f"shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(field, f"finite numbers (index {i})", float(arr[i]))
    return arr


def token_array(value: Any, field: str, n: int | None = None) -> np.ndarray:
    """A non-empty 1-D array of whole token counts >= 1 (``n`` of them when given), read-only int64."""
    arr = finite_array(value, field)
    bad = (arr < 1) | (arr != np.round(arr))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(field, f"whole numbers of tokens >= 1 (index {i})", float(arr[i]))
    if n is not None and arr.size != n:
        raise InputError(field, f"{n} lengths, one per request", arr.size)
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out
