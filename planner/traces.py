"""Request traces: BurstGPT, Azure LLM inference and plain CSV files read into one ``Trace``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner.errors import InputError
from planner.lengths import _MAX_SAMPLE_TOKENS, _set, _token_array  # noqa: F401

# ---------------------------------------------------------------- traces


@dataclass(frozen=True, eq=False)
class Trace:
    """One row per request. timestamps_s, when given, are non-decreasing seconds from any origin.

    rate_rps = (n - 1) / (t_last - t_first); interarrival_cv = std(diff(t)) / mean(diff(t)) (population
    std; 1 for a Poisson process). Both are None when the timestamps cannot define them.

    Whole-second timestamps with many ties (BurstGPT logs seconds) make the raw gaps 0 or whole seconds,
    which reads Poisson traffic as CV ~2. When every timestamp is integral and at least
    WHOLE_SECOND_TIES of the gaps are 0, interarrival_cv spreads each second's requests uniformly within
    it first (seeded): for a Poisson process, arrivals within a second given their count are uniform,
    so this recovers its CV of 1; raw_interarrival_cv keeps the unspread figure.
    """

    input_tokens: np.ndarray
    output_tokens: np.ndarray
    timestamps_s: np.ndarray | None = None
    source: str = "arrays"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        isl = _token_array(self.input_tokens, "input_tokens")
        osl = _token_array(self.output_tokens, "output_tokens")
        if isl.size != osl.size:
            raise InputError("output_tokens", f"as many rows as input_tokens ({isl.size})", osl.size)
        t = self.timestamps_s
        if t is not None:
            t = np.array(t, dtype=float)
            if t.shape != isl.shape or not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
                raise InputError("timestamps_s", f"{isl.size} finite, sorted seconds", f"shape {t.shape}")
            t.setflags(write=False)
        _set(self, input_tokens=isl, output_tokens=osl, timestamps_s=t, notes=tuple(self.notes))

    @property
    def n(self) -> int:
        return int(self.input_tokens.size)

    @property
    def rate_rps(self) -> float | None:
        t = self.timestamps_s
        if t is None or t.size < 2 or t[-1] <= t[0]:
            return None
        return (t.size - 1) / float(t[-1] - t[0])

    @property
    def whole_second_timestamps(self) -> bool:
        """True when the timestamps look rounded to whole seconds (all integral, many ties)."""
        return self.timestamps_s is not None and _whole_seconds(self.timestamps_s)

    @property
    def interarrival_cv(self) -> float | None:
        """CV of the gaps; for whole-second timestamps, of the gaps once each second is spread out."""
        if self.timestamps_s is None:
            return None
        t = _spread_seconds(self.timestamps_s) if self.whole_second_timestamps else self.timestamps_s
        return _gap_cv(t)

    @property
    def raw_interarrival_cv(self) -> float | None:
        """CV of the gaps between the timestamps as written."""
        return None if self.timestamps_s is None else _gap_cv(self.timestamps_s)


WHOLE_SECOND_TIES = 0.05  # share of zero gaps that marks integer-second timestamps


def _gap_cv(t: np.ndarray) -> float | None:
    """Population CV of the gaps of sorted times ``t`` (None with fewer than 3 times or no spread)."""
    if t.size < 3:
        return None
    gaps = np.diff(t)
    return float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else None


def _cv_text(cv: float | None) -> str:
    return f"{cv:.2f}" if cv is not None else "undefined (no time between the requests)"


def _whole_seconds(t: np.ndarray) -> bool:
    """All times integral and at least WHOLE_SECOND_TIES of the gaps zero (many requests per logged second)."""
    if t.size < 3 or not np.all(t == np.round(t)):
        return False
    return float(np.mean(np.diff(t) == 0)) >= WHOLE_SECOND_TIES


def _spread_seconds(t: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each time moved to a seeded uniform point within its second, sorted again."""
    rng = np.random.default_rng(seed)
    return np.sort(t + rng.random(t.size))


TRACE_FORMATS = {
    "burstgpt": "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
    "azure": "TIMESTAMP,ContextTokens,GeneratedTokens",
    "plain": "input_tokens,output_tokens[,timestamp] (or isl,osl / prompt_tokens,completion_tokens)",
}
_PLAIN_IN = ("input_tokens", "isl", "prompt_tokens")
_PLAIN_OUT = ("output_tokens", "osl", "completion_tokens")


def _detect(names: dict[str, str], where: str) -> tuple[str, str, str, str | None]:
    """(format, input key, output key, time key or None) from the normalised header."""
    time_key = next((k for k in ("timestamp", "timestamp_s") if k in names), None)
    if {"request_tokens", "response_tokens"} <= names.keys():
        return "burstgpt", "request_tokens", "response_tokens", time_key
    if {"contexttokens", "generatedtokens"} <= names.keys():
        return "azure", "contexttokens", "generatedtokens", time_key
    ins, outs = [k for k in _PLAIN_IN if k in names], [k for k in _PLAIN_OUT if k in names]
    if ins and outs:  # first alias wins when several are present
        return "plain", ins[0], outs[0], time_key
    known = "; ".join(f"{k}: {v}" for k, v in TRACE_FORMATS.items())
    raise InputError("trace columns", f"a known header ({known})", list(names.values()), where=where)


def read_trace(path: str | Path, *, drop_failed: bool = True) -> Trace:
    """Read a BurstGPT, Azure LLM inference (2023/2024) or plain CSV trace; the header picks the format.

    Extra columns, column-name case and whitespace are ignored. In the published traces (BurstGPT,
    Azure) a row with 0 output tokens is a failed request and a row with 0 input tokens an empty
    log entry: with drop_failed (the default) both are dropped and counted in Trace.notes; otherwise,
    and always in plain CSVs, a zero count is an error naming its line. Rows are sorted by time.
    """
    where = str(path)
    from planner.csvread import _columns, _read_csv, _times  # pandas loads only when a trace is read

    df, names = _read_csv(path, "trace")
    fmt, in_key, out_key, time_key = _detect(names, where)
    lenient = drop_failed and fmt != "plain"
    isl, osl = _columns(df, names, (in_key, out_key), where, whole=True, minimum=0 if lenient else 1)
    t = _times(df, names, time_key, where) if time_key else None
    failed, empty = osl == 0, (isl == 0) & (osl > 0)
    drops = ((failed, out_key, " (failed requests)"), (empty, in_key, ""))
    notes = [f"dropped {m.sum()} of {m.size} rows with 0 {names[k]}{why}" for m, k, why in drops if m.any()]
    keep = ~(failed | empty)
    if not keep.any():
        raise InputError("trace rows", "a row with non-zero token counts", f"{isl.size} rows", where=where)
    isl, osl = isl[keep], osl[keep]
    if t is not None:
        t = t[keep]
        if np.any(np.diff(t) < 0):
            order = np.argsort(t, kind="stable")
            isl, osl, t = isl[order], osl[order], t[order]
            notes.append("rows sorted by timestamp")
    if t is not None and _whole_seconds(t):
        ties = float(np.mean(np.diff(t) == 0))
        spread, written = _gap_cv(_spread_seconds(t)), _gap_cv(t)
        notes.append(f"timestamps are whole seconds ({ties:.0%} of gaps are 0): arrival cv "
                     f"{_cv_text(spread)} estimated with each second's requests spread uniformly "
                     f"within it (as written: {_cv_text(written)})")
    return Trace(isl, osl, t, source=f"{fmt}:{Path(path).name}", notes=tuple(notes))


