"""Request-length distributions (fixed, lognormal, empirical) and the checks every workload value shares.

Lengths are whole tokens (>= 1). ``parse_length`` reads the forms a scenario uses: ``1024``,
``lognormal:mean=800,p99=4000``, ``hist:file.csv``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Protocol, runtime_checkable

import numpy as np

from planner.errors import InputError

Z99 = NormalDist().inv_cdf(0.99)  # Phi^-1(0.99) = 2.3263478740...
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
        phi = NormalDist().cdf
        return free * phi((ln_m - mu - s * s) / s) + cap * phi((mu - ln_m) / s)

    def quantile(self, q: float) -> float:
        x = math.exp(self.mu + self.sigma * NormalDist().inv_cdf(_check_q(q)))
        return x if self.max_tokens is None else min(x, float(self.max_tokens))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            from scipy.special import ndtri  # arrays: loaded when first sampled

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
        from planner.csvread import _columns, _read_csv

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


