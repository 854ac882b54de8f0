"""Workload: request-size distributions, traces, SLOs and ISL x OSL bucketing.

Everything here is a plain value: lengths are whole tokens (>= 1), times are seconds, rates are
requests per second. ``bucketize`` turns a ``Workload`` into the ISL x OSL cells, each with its
own rate, that the serving and optimise layers plan for. See docs/workload.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from planner.errors import InputError

Z99 = float(ndtri(0.99))  # Phi^-1(0.99) = 2.3263478740...
_MAX_SAMPLE_TOKENS = 2**31 - 1  # cap on sampled lengths, so a runaway lognormal tail cannot overflow


# ---------------------------------------------------------------- checks shared by every value


def _set(obj: object, **values: object) -> None:
    """Store validated values on a frozen dataclass from its __post_init__."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


def _number(x: object, field: str, where: str | None = None) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InputError(field, "a number", x, where=where)
    return float(x)


def _positive(x: object, field: str, where: str | None = None) -> float:
    v = _number(x, field, where)
    if not math.isfinite(v) or v <= 0:
        raise InputError(field, "a positive finite number", x, where=where)
    return v


def _whole_tokens(x: object, field: str, where: str | None = None) -> int:
    v = _number(x, field, where)
    if not math.isfinite(v) or v < 1 or v != round(v):
        raise InputError(field, "a whole number of tokens >= 1", x, where=where)
    return int(v)


def _token_array(x: object, field: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise InputError(field, "a non-empty 1-D array of token counts", f"shape {a.shape}")
    bad = ~np.isfinite(a) | (a < 1) | (a != np.round(a)) | (a > _MAX_SAMPLE_TOKENS)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(field, f"whole numbers of tokens in 1..{_MAX_SAMPLE_TOKENS:,} (index {i})", float(a[i]))
    out = a.astype(np.int64)
    out.setflags(write=False)
    return out


def _check_q(q: float) -> float:
    v = _number(q, "quantile q")
    if not 0 < v < 1:
        raise InputError("quantile q", "a probability strictly between 0 and 1", q)
    return v


def _count(n: object, field: str = "n", minimum: int = 0) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise InputError(field, f"a whole number >= {minimum}", n)
    return int(n)


# ---------------------------------------------------------------- length distributions


@runtime_checkable
class LengthDist(Protocol):
    """A distribution of request lengths in whole tokens (>= 1).

    ppf(u) maps cumulative probabilities u in [0, 1] to whole-token lengths (the inverse CDF, vectorised);
    sample(n, rng) = ppf(uniform draws), so bucketize can also draw stratified samples through ppf.
    """

    def mean(self) -> float: ...
    def quantile(self, q: float) -> float: ...
    def ppf(self, u: np.ndarray) -> np.ndarray: ...
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class Fixed:
    """Every request has exactly ``tokens`` tokens: mean = quantile(q) = tokens."""

    tokens: int

    def __post_init__(self) -> None:
        _set(self, tokens=_whole_tokens(self.tokens, "tokens"))

    def mean(self) -> float:
        return float(self.tokens)

    def quantile(self, q: float) -> float:
        _check_q(q)
        return float(self.tokens)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), self.tokens, dtype=np.int64)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.ppf(rng.random(_count(n)))

    def describe(self) -> str:
        return f"fixed {self.tokens} tokens"


@dataclass(frozen=True)
class LogNormal:
    """ln L ~ Normal(mu, sigma^2); samples are rounded to whole tokens and clipped to [1, max_tokens].

    mean = exp(mu + sigma^2/2) and quantile(q) = exp(mu + sigma * Phi^-1(q)), of the continuous
    law (rounding moves the mean by well under one token). With a clip M:
    E[min(L, M)] = exp(mu + sigma^2/2) * Phi((ln M - mu - sigma^2)/sigma) + M * (1 - Phi((ln M - mu)/sigma))
    and quantile(q) = min(exp(mu + sigma * Phi^-1(q)), M).
    """

    mu: float
    sigma: float
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(_number(self.mu, "mu")):
            raise InputError("mu", "a finite number (the mean of ln tokens)", self.mu)
        clip = None if self.max_tokens is None else _whole_tokens(self.max_tokens, "max_tokens")
        _set(self, mu=float(self.mu), sigma=_positive(self.sigma, "sigma"), max_tokens=clip)

    @classmethod
    def from_mean_p99(cls, mean: float, p99: float, max_tokens: int | None = None) -> LogNormal:
        """Solve exp(mu + s^2/2) = mean and exp(mu + z*s) = p99 with z = Phi^-1(0.99).

        Subtracting the logs: s^2/2 - z*s + ln(p99/mean) = 0, so s = z - sqrt(z^2 - 2 ln(p99/mean))
        (the smaller root; the larger one puts the median far below the mean) and mu = ln(mean) - s^2/2.
        A solution needs mean < p99 <= exp(z^2/2) * mean (about 14.97 x mean).
        """
        m, p = _positive(mean, "mean"), _positive(p99, "p99")
        if p <= m:
            raise InputError("p99", f"a value above the mean {m:g} (a lognormal's p99 exceeds its mean)", p99)
        disc = Z99**2 - 2.0 * math.log(p / m)
        if disc < 0:
            limit = math.exp(Z99**2 / 2) * m
            raise InputError("p99", f"at most {limit:.6g} (14.97 x the mean) for a lognormal", p99)
        sigma = Z99 - math.sqrt(disc)
        return cls(mu=math.log(m) - sigma**2 / 2, sigma=sigma, max_tokens=max_tokens)

    def mean(self) -> float:
        mu, s = self.mu, self.sigma
        free = math.exp(mu + s * s / 2)
        if self.max_tokens is None:
            return free
        cap, ln_m = self.max_tokens, math.log(self.max_tokens)
        return free * float(ndtr((ln_m - mu - s * s) / s)) + cap * float(ndtr((mu - ln_m) / s))

    def quantile(self, q: float) -> float:
        x = math.exp(self.mu + self.sigma * float(ndtri(_check_q(q))))
        return x if self.max_tokens is None else min(x, float(self.max_tokens))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            x = np.rint(np.exp(self.mu + self.sigma * ndtri(np.asarray(u, dtype=float))))
        return np.clip(x, 1, self.max_tokens or _MAX_SAMPLE_TOKENS).astype(np.int64)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.ppf(rng.random(_count(n)))

    def describe(self) -> str:
        clip = f", clipped at {self.max_tokens}" if self.max_tokens else ""
        return (f"lognormal mu={self.mu:.4g} sigma={self.sigma:.4g} (mean {self.mean():.0f}, "
                f"p99 {self.quantile(0.99):.0f}{clip})")


@dataclass(frozen=True, eq=False)
class Empirical:
    """A discrete law: P(L = values[i]) = weights[i] / sum(weights).

    The constructor sorts the values, merges duplicates and normalises the weights to sum to 1.
    mean = sum_i p_i * v_i; quantile(q) = the smallest v with CDF(v) >= q.
    """

    values: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        v = _token_array(self.values, "values")
        w = np.asarray(self.weights, dtype=float)
        if w.shape != v.shape:
            raise InputError("weights", f"one weight per value ({v.size})", f"shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InputError("weights", "finite numbers >= 0 with a positive sum", f"sum {w.sum()}")
        uniq, inv = np.unique(v, return_inverse=True)
        merged = np.bincount(inv, weights=w) / w.sum()
        uniq = uniq.astype(np.int64)
        uniq.setflags(write=False)
        merged.setflags(write=False)
        _set(self, values=uniq, weights=merged)

    @classmethod
    def from_samples(cls, samples: object) -> Empirical:
        """Each observed length weighted by how often it occurs."""
        vals, counts = np.unique(_token_array(samples, "samples"), return_counts=True)
        return cls(vals, counts.astype(float))

    @classmethod
    def from_histogram_csv(cls, path: str | Path) -> Empirical:
        """Read ``tokens,count`` / ``tokens,weight``, or binned ``bin_lo,bin_hi,count``.

        A bin covers the whole lengths bin_lo <= L < bin_hi (bin_lo = 0 is read as 1) and spreads its
        count evenly over them, so within a bin lengths are uniform.
        """
        df, names = _read_csv(path, "histogram")
        where = str(path)
        wkey = next((k for k in ("count", "weight") if k in names), None)
        if wkey is None or not ({"tokens"} <= names.keys() or {"bin_lo", "bin_hi"} <= names.keys()):
            raise InputError("histogram columns", "tokens,count or tokens,weight or bin_lo,bin_hi,count",
                             list(names.values()), where=where)
        (w,) = _columns(df, names, (wkey,), where, whole=False, minimum=0)
        if "tokens" in names:
            return cls(_columns(df, names, ("tokens",), where, whole=True, minimum=1)[0], w)
        lo, hi = _columns(df, names, ("bin_lo", "bin_hi"), where, whole=True, minimum=0)
        lo = np.maximum(lo, 1)
        if np.any(hi <= lo):
            i = int(np.argmax(hi <= lo))
            line = df.index[i] + 2
            raise InputError("bin_hi", "a value above bin_lo", int(hi[i]), where=f"{where} line {line}")
        widths = (hi - lo).astype(np.int64)
        if widths.sum() > 10_000_000:
            raise InputError("histogram bins", "at most 10 million tokens spanned in all", int(widths.sum()))
        starts = np.repeat(lo.astype(np.int64) - np.cumsum(widths) + widths, widths)
        return cls(starts + np.arange(widths.sum()), np.repeat(w / widths, widths))

    def mean(self) -> float:
        return float(np.dot(self.values, self.weights))

    def quantile(self, q: float) -> float:
        cdf = np.cumsum(self.weights)
        i = min(int(np.searchsorted(cdf, _check_q(q) - 1e-12, side="left")), self.values.size - 1)
        return float(self.values[i])

    def ppf(self, u: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(np.cumsum(self.weights), u, side="right")
        return self.values[np.minimum(idx, self.values.size - 1)]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.ppf(rng.random(_count(n)))

    def describe(self) -> str:
        return (f"empirical over {self.values.size} lengths (mean {self.mean():.0f}, "
                f"p50 {self.quantile(0.5):.0f}, p99 {self.quantile(0.99):.0f})")


def parse_length(text: str) -> LengthDist:
    """Parse a CLI length: ``512``, ``lognormal:mean=800,p99=4000[,max=8192]``,
    ``lognormal:mu=6.5,sigma=0.8[,max=8192]`` or ``hist:path.csv``."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("length", "512, lognormal:mean=M,p99=P, lognormal:mu=U,sigma=S or hist:FILE", text)
    s = text.strip()
    kind, _, rest = s.partition(":")
    kind = kind.strip().lower()
    if not rest and re.fullmatch(r"\d+(\.0*)?", s):
        return Fixed(int(float(s)))
    if kind == "hist" and rest.strip():
        return Empirical.from_histogram_csv(rest.strip())
    if kind == "lognormal":
        try:
            kv = {k.strip().lower(): float(v) for k, v in (p.split("=", 1) for p in rest.split(","))}
        except ValueError:
            raise InputError("length", "lognormal:key=number,... with keys mean,p99 or mu,sigma [,max]",
                             text) from None
        clip = _whole_tokens(kv.pop("max"), "max", where=s) if "max" in kv else None
        if kv.keys() == {"mean", "p99"}:
            return LogNormal.from_mean_p99(kv["mean"], kv["p99"], max_tokens=clip)
        if kv.keys() == {"mu", "sigma"}:
            return LogNormal(kv["mu"], kv["sigma"], max_tokens=clip)
        raise InputError("length", "lognormal keys mean,p99 or mu,sigma (plus optional max)", text)
    raise InputError("length", "512, lognormal:mean=M,p99=P, lognormal:mu=U,sigma=S or hist:FILE", text)


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
        notes.append(f"timestamps are whole seconds ({ties:.0%} of gaps are 0): arrival cv "
                     f"{_gap_cv(_spread_seconds(t)):.2f} estimated with each second's requests spread uniformly "
                     f"within it (as written: {_gap_cv(t):.2f})")
    return Trace(isl, osl, t, source=f"{fmt}:{Path(path).name}", notes=tuple(notes))


# ---------------------------------------------------------------- SLO


def _check_percentile(p: float, got: object) -> float:
    if not math.isfinite(p) or not 1 <= p < 100:
        raise InputError("percentile", "a number in [1, 100), e.g. 99 for p99, not a fraction", got)
    return p


@dataclass(frozen=True)
class SLO:
    """Latency limits met by ``attainment`` of requests at the ``percentile`` (None = no limit).

    attainment defaults to percentile / 100: a p99 TTFT of 2 s means 99% of requests start within 2 s.
    """

    ttft_s: float | None = None
    tpot_s: float | None = None
    percentile: float = 99.0
    e2e_s: float | None = None
    attainment: float | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_s", "tpot_s", "e2e_s"):
            if getattr(self, name) is not None:
                _set(self, **{name: _positive(getattr(self, name), name)})
        p = _check_percentile(_number(self.percentile, "percentile"), self.percentile)
        a = p / 100 if self.attainment is None else _number(self.attainment, "attainment")
        if not 0 < a <= 1:
            raise InputError("attainment", "a share of requests in (0, 1]", self.attainment)
        _set(self, percentile=p, attainment=a)

    @staticmethod
    def parse_percentile(value: str | float) -> float:
        """'p99' -> 99.0, 'P99.9' -> 99.9, '95' -> 95.0, 99 -> 99.0."""
        if isinstance(value, str):
            text = value.strip().lower().removeprefix("p")
            try:
                p = float(text)
            except ValueError:
                raise InputError("percentile", "p50, p90, p95, p99, p99.9 or a number", value) from None
        else:
            p = _number(value, "percentile")
        return _check_percentile(p, value)


# ---------------------------------------------------------------- workload


@dataclass(frozen=True, eq=False)
class Workload:
    """Requests arriving at rate_rps with lengths drawn from input_len and output_len.

    arrival_cv is the coefficient of variation of inter-arrival times (1 = Poisson, 0 = evenly
    spaced, > 1 = bursty). ``pairs`` (shape (n, 2): isl, osl), when set, are joint samples from a
    trace; sampling and bucketing then use them and keep the ISL/OSL correlation.
    """

    rate_rps: float
    input_len: LengthDist
    output_len: LengthDist
    arrival_cv: float = 1.0
    pairs: np.ndarray | None = None
    notes: tuple[str, ...] = ()  # what was assumed reading the source (e.g. a trace's timestamp correction)

    def __post_init__(self) -> None:
        cv = _number(self.arrival_cv, "arrival_cv")
        if not math.isfinite(cv) or cv < 0:
            raise InputError("arrival_cv", "a finite number >= 0 (1 = Poisson)", self.arrival_cv)
        _set(self, rate_rps=_positive(self.rate_rps, "rate_rps"), arrival_cv=cv)
        for name in ("input_len", "output_len"):
            if not isinstance(getattr(self, name), LengthDist):
                raise InputError(name, "a Fixed, LogNormal or Empirical length", getattr(self, name))
        if self.pairs is not None:
            a = np.asarray(self.pairs)
            if a.ndim != 2 or a.shape[1] != 2:
                raise InputError("pairs", "an (n, 2) array of (isl, osl)", f"shape {a.shape}")
            pairs = np.column_stack([_token_array(a[:, 0], "pairs isl"), _token_array(a[:, 1], "pairs osl")])
            pairs.setflags(write=False)
            _set(self, pairs=pairs)

    @classmethod
    def fixed(cls, rate_rps: float, isl: int, osl: int) -> Workload:
        return cls(rate_rps, Fixed(isl), Fixed(osl))

    @classmethod
    def from_trace(
        cls, trace: Trace, rate_rps: float | None = None, arrival_cv: float | None = None
    ) -> Workload:
        """Lengths from the trace's rows; rate and cv from its timestamps unless given (cv defaults to 1)."""
        rate = rate_rps if rate_rps is not None else trace.rate_rps
        if rate is None:
            raise InputError("rate_rps", "a positive rate: the trace has no usable timestamps", None,
                             where=f"trace {trace.source}")
        cv = arrival_cv if arrival_cv is not None else (trace.interarrival_cv or 1.0)
        isl, osl = trace.input_tokens, trace.output_tokens
        pairs = np.column_stack([isl, osl])
        notes = trace.notes if arrival_cv is None else tuple(n for n in trace.notes if "arrival cv" not in n)
        return cls(rate, Empirical.from_samples(isl), Empirical.from_samples(osl), cv, pairs, tuple(notes))

    def sample_requests(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(isl, osl) for n requests: resampled pairs when present, else independent draws."""
        if self.pairs is not None:
            rows = self.pairs[rng.integers(0, self.pairs.shape[0], _count(n))]
            return rows[:, 0].copy(), rows[:, 1].copy()
        return self.input_len.sample(n, rng), self.output_len.sample(n, rng)

    def describe(self) -> str:
        src = f", {self.pairs.shape[0]} trace pairs" if self.pairs is not None else ""
        return (f"{self.rate_rps:.4g} req/s (arrival cv {self.arrival_cv:.2f}{src}); "
                f"input {self.input_len.describe()}; output {self.output_len.describe()}")


# ---------------------------------------------------------------- bucketing


@dataclass(frozen=True)
class Bucket:
    """One ISL x OSL cell: lengths isl_lo..isl_hi and osl_lo..osl_hi (inclusive), share of requests,
    rate_rps = share * workload rate, within-cell means (representative lengths) and p90s (tails)."""

    isl_lo: int
    isl_hi: int
    osl_lo: int
    osl_hi: int
    isl_mean: float
    osl_mean: float
    isl_p90: float
    osl_p90: float
    share: float
    rate_rps: float
    isl_tail: float = 0.0
    """Input length at the SLO percentile among the cell's requests (0: not computed; use isl_p90)."""
    isl_cs2: float = 0.0
    """Squared CV of the cell's input lengths (prefill work is about linear in them)."""


@dataclass(frozen=True)
class Buckets:
    """The non-empty cells of a bucketed workload, ordered by ISL cell then OSL cell."""

    buckets: tuple[Bucket, ...]
    rate_rps: float
    n_requests: int

    def __len__(self) -> int:
        return len(self.buckets)

    def __iter__(self) -> Iterator[Bucket]:
        return iter(self.buckets)

    @property
    def mean_isl(self) -> float:
        """sum over cells of share * isl_mean: the source's (sample) mean input length."""
        return float(sum(b.share * b.isl_mean for b in self.buckets))

    @property
    def mean_osl(self) -> float:
        return float(sum(b.share * b.osl_mean for b in self.buckets))

    def quantile(self, q: float, axis: str = "isl") -> float:
        """Quantile q of the bucketed ISL (or OSL) marginal, from the buckets alone.

        The marginal CDF is exact at cell bounds (sum of shares below). Inside a cell [lo, hi] of
        share s and mean m, lengths are taken as a truncated power law, density ~ L^(b-1), with b
        fitted so its mean is m (see _power_law_quantile); q is found in the cell where the CDF crosses it.
        """
        if axis not in ("isl", "osl"):
            raise InputError("axis", "'isl' or 'osl'", axis)
        q = _check_q(q)
        df = self.to_frame()
        df["mass"] = df["share"] * df[f"{axis}_mean"]
        cells = df.groupby([f"{axis}_lo", f"{axis}_hi"])[["share", "mass"]].sum().reset_index().to_numpy()
        below = np.concatenate([[0.0], np.cumsum(cells[:, 2])])
        i = min(int(np.searchsorted(below[1:], q - 1e-12)), len(cells) - 1)
        lo, hi, share, mass = cells[i]
        return _power_law_quantile(int(lo), int(hi), mass / share, min(max((q - below[i]) / share, 0.0), 1.0))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{f.name: getattr(b, f.name) for f in fields(Bucket)} for b in self.buckets],
                            columns=[f.name for f in fields(Bucket)])


def _power_law_quantile(lo: int, hi: int, mean: float, f: float) -> float:
    """Quantile f of density ~ L^(b-1) on [lo, hi] whose mean is ``mean``.

    With u = ln(L/lo) in [0, W], W = ln(hi/lo): F(u) = expm1(b*u) / expm1(b*W), so
    L = lo * exp(ln(1 + f * expm1(b*W)) / b), and E[L]/lo = b/(b+1) * expm1((b+1)W) / expm1(bW)
    (b = 0 and b = -1 by their limits). b is solved by bisection over b*W in [-40, 40].
    """
    if hi <= lo:
        return float(lo)
    w = math.log(hi / lo)

    def mean_ratio(b: float) -> float:
        if abs(b) < 1e-9:
            return math.expm1(w) / w
        if abs(b + 1) < 1e-9:
            return w / -math.expm1(-w)
        return b / (b + 1) * math.expm1((b + 1) * w) / math.expm1(b * w)

    lo_b, hi_b, target = -40 / w, 40 / w, mean / lo
    for _ in range(100):  # mean_ratio rises with b
        mid = (lo_b + hi_b) / 2
        lo_b, hi_b = (mid, hi_b) if mean_ratio(mid) < target else (lo_b, mid)
    b = (lo_b + hi_b) / 2
    u = f * w if abs(b) < 1e-9 else math.log1p(f * math.expm1(b * w)) / b
    return float(min(lo * math.exp(u), hi))


def _edges(x: np.ndarray, n: int) -> np.ndarray:
    """Whole-token cell bounds: ceil of n+1 log-spaced points from min to max; cell i is
    edges[i] <= L < edges[i+1]. A constant axis (or n = 1) gives one cell."""
    lo, hi = int(x.min()), int(x.max())
    if lo == hi or n == 1:
        return np.array([lo, hi + 1])
    e = np.ceil(np.geomspace(lo, hi, n + 1)).astype(np.int64)
    e[0], e[-1] = lo, hi + 1
    return np.unique(e)


def bucketize(
    workload: Workload, n_isl: int = 8, n_osl: int = 5, n_samples: int = 20000, seed: int = 0,
    percentile: float = 90.0,
) -> Buckets:
    """Split a workload into at most n_isl x n_osl ISL x OSL cells with log-spaced bounds.

    The requests are the workload's trace pairs when it has them (no sampling), else n_samples
    Latin-hypercube draws (u_i = (perm_i + U_i) / n through each length's ppf, the two axes paired by
    independent permutations) from numpy's default_rng(seed): stratifying cuts the sampling error of
    means and quantiles well below that of independent draws. A cell's share = its requests / all
    requests; empty cells are dropped, so shares sum to 1 and rates sum to workload.rate_rps.
    """
    n_isl, n_osl = _count(n_isl, "n_isl", 1), _count(n_osl, "n_osl", 1)
    n_samples = _count(n_samples, "n_samples", 1)
    if workload.pairs is not None:
        isl, osl = workload.pairs[:, 0], workload.pairs[:, 1]
    else:  # Latin hypercube: one draw in each of n equal-probability strata per axis, paired at random
        rng = np.random.default_rng(seed)
        isl, osl = (d.ppf((rng.permutation(n_samples) + rng.random(n_samples)) / n_samples)
                    for d in (workload.input_len, workload.output_len))
    ei, eo = _edges(isl, n_isl), _edges(osl, n_osl)
    ci = np.searchsorted(ei, isl, side="right") - 1
    co = np.searchsorted(eo, osl, side="right") - 1
    cell = ci * (eo.size - 1) + co
    order = np.argsort(cell, kind="stable")
    ids, starts = np.unique(cell[order], return_index=True)
    total = isl.size
    # the prompt length a cell's TTFT tail is planned for: its own length at the SLO percentile, but no
    # longer than the whole workload's: longer prompts are at most (1 − percentile) of all requests,
    # the share the SLO lets miss (with one cell, the two agree: estimate and plan mean the same)
    global_tail = float(np.percentile(isl, percentile))
    out = []
    for cid, rows in zip(ids, np.split(order, starts[1:]), strict=True):
        i, o = divmod(int(cid), eo.size - 1)
        share = rows.size / total
        out.append(Bucket(
            isl_lo=int(ei[i]), isl_hi=int(ei[i + 1] - 1), osl_lo=int(eo[o]), osl_hi=int(eo[o + 1] - 1),
            isl_mean=float(isl[rows].mean()), osl_mean=float(osl[rows].mean()),
            isl_p90=float(np.percentile(isl[rows], 90)), osl_p90=float(np.percentile(osl[rows], 90)),
            share=share, rate_rps=share * workload.rate_rps,
            isl_tail=min(float(np.percentile(isl[rows], percentile)), global_tail),
            isl_cs2=float(isl[rows].var() / isl[rows].mean() ** 2),
        ))
    return Buckets(tuple(out), workload.rate_rps, int(total))
