"""Workload: request-size distributions, traces, SLOs and ISL x OSL bucketing.

Everything here is a plain value: lengths are whole tokens (>= 1), times are seconds, rates are
requests per second. ``bucketize`` turns a ``Workload`` into the ISL x OSL cells, each with its
own rate, that the serving and optimise layers plan for. See docs/workload.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from planner.errors import InputError
from planner.lengths import (  # noqa: F401 - re-exported: the workload's public names
    Z99,
    Empirical,
    Fixed,
    LengthDist,
    LogNormal,
    _check_q,
    _count,
    _number,
    _positive,
    _set,
    _token_array,
    _whole_tokens,
    parse_length,
)
from planner.traces import TRACE_FORMATS, Trace, read_trace  # noqa: F401

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
    decode_steps_hmean: float = 0.0
    """Harmonic mean of the cell's decode steps per request, max(osl − 1, 1) (0: not computed). A
    request's TPOT averages its own steps, so the spread of that average over the cell's requests goes
    with E[1/steps] = 1/decode_steps_hmean, not with 1/mean steps (short answers are the noisy ones)."""


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

    def to_frame(self):
        import pandas as pd

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


def _draws(workload: Workload, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The requests ``bucketize`` reads: a trace's pairs, else Latin-hypercube draws (its docstring)."""
    if workload.pairs is not None:
        return workload.pairs[:, 0], workload.pairs[:, 1]
    rng = np.random.default_rng(seed)  # one draw in each of n equal-probability strata per axis, paired at random
    isl, osl = (d.ppf((rng.permutation(n_samples) + rng.random(n_samples)) / n_samples)
                for d in (workload.input_len, workload.output_len))
    return isl, osl


def prompt_tail(workload: Workload, percentile: float, n_samples: int = 20000, seed: int = 0) -> float:
    """The whole workload's prompt length at ``percentile``: the longest prompt any bucket's TTFT tail is
    planned for (``bucketize``); longer prompts are the (1 − percentile) share the SLO lets miss."""
    return float(np.percentile(_draws(workload, n_samples, seed)[0], percentile))


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
    isl, osl = _draws(workload, n_samples, seed)
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
            decode_steps_hmean=float(1.0 / np.mean(1.0 / np.maximum(osl[rows] - 1.0, 1.0))),
        ))
    return Buckets(tuple(out), workload.rate_rps, int(total))

