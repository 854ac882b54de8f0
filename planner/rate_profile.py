"""Rate profiles: request rates per period over a day (or any cycle), and the scale-up lag.

``workload.rate_profile`` is either a list of rates (req/s, one per period of ``period_s``,
default one hour) or a mapping::

    rate_profile: {rates: [4, 4, 6, ...], period_s: 3600, scale_up_lag_s: 600}
    rate_profile: {from_trace: true, period_s: 3600}      # counts of the trace's timestamps per period

From a trace, period p's rate is (requests with timestamp in [t0 + p·T, t0 + (p+1)·T)) / T, with t0
the first timestamp; a last partial period is dropped when it is under half a period.

Scale-up lag L (minutes to load weights): an instance needed in period q must be running when q
starts, so it is bought from ⌈L/T⌉ periods earlier. The plan meets, in period p,

    demand'_p = max(demand_p, demand_{p+1}, ..., demand_{p+⌈L/T⌉})     (periods wrap: the day repeats)

which keeps capacity ahead of every ramp by at least L (conservatively, by whole periods).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.checks import known_keys, positive
from planner.errors import InputError

MAX_PERIODS = 168  # a week of hours
KEYS = ("rates", "period_s", "scale_up_lag_s", "from_trace")


@dataclass(frozen=True)
class RateProfile:
    """Rates per period (req/s), the period length and the scale-up lag (seconds)."""

    rates_rps: tuple[float, ...]
    period_s: float = 3600.0
    scale_up_lag_s: float = 0.0
    source: str = "scenario"

    def __post_init__(self) -> None:
        if not 1 <= len(self.rates_rps) <= MAX_PERIODS:
            raise InputError("workload.rate_profile", f"1..{MAX_PERIODS} periods", len(self.rates_rps))
        if max(self.rates_rps) <= 0:
            raise InputError("workload.rate_profile", "at least one period with a positive rate", list(self.rates_rps))

    @property
    def peak_rps(self) -> float:
        return max(self.rates_rps)

    @property
    def span_s(self) -> float:
        return self.period_s * len(self.rates_rps)

    @property
    def lead_periods(self) -> int:
        """⌈L/T⌉: how many periods ahead capacity must be bought."""
        return math.ceil(self.scale_up_lag_s / self.period_s - 1e-9) if self.scale_up_lag_s > 0 else 0

    def planned_rates(self) -> tuple[float, ...]:
        """demand'_p = max over periods p..p+⌈L/T⌉ (cyclic) — the module docstring's lag rule."""
        n, k = len(self.rates_rps), self.lead_periods
        return tuple(max(self.rates_rps[(p + j) % n] for j in range(min(k, n - 1) + 1)) for p in range(n))


def from_timestamps(t: np.ndarray, period_s: float) -> tuple[float, ...]:
    """Rates per period from arrival times: count per [t0 + pT, t0 + (p+1)T) over T."""
    t = np.asarray(t, dtype=float)
    t = t - t[0]
    n = int(math.floor(t[-1] / period_s)) + 1
    counts = np.bincount(np.minimum((t // period_s).astype(int), n - 1), minlength=n).astype(float)
    if n > 1 and (t[-1] - (n - 1) * period_s) < period_s / 2:
        counts[-2] += counts[-1]  # fold a short last period into the one before
        counts = counts[:-1]
    return tuple(float(c) / period_s for c in counts)


def parse_rate_profile(raw: Any, where: str, trace_times: np.ndarray | None = None) -> RateProfile:
    """A list of rates, or the mapping of KEYS (module docstring)."""
    f = "workload.rate_profile"
    if isinstance(raw, list):
        raw = {"rates": raw}
    if not isinstance(raw, dict):
        raise InputError(f, "a list of rates (req/s per period) or a mapping with rates or from_trace, period_s, "
                         "scale_up_lag_s", raw, where=where)
    known_keys(raw, KEYS, where, f"{f}.")
    period = positive(raw.get("period_s", 3600.0), f"{f}.period_s", where, upper=7 * 86400)
    lag = positive(raw.get("scale_up_lag_s", 0.0), f"{f}.scale_up_lag_s", where, allow_zero=True, upper=86400)
    from_trace = raw.get("from_trace", False)
    if not isinstance(from_trace, bool):
        raise InputError(f"{f}.from_trace", "true or false", from_trace, where=where)
    if from_trace == ("rates" in raw):
        raise InputError(f, "either rates or from_trace: true (one of the two)", sorted(raw), where=where)
    if from_trace:
        if trace_times is None or len(trace_times) < 2:
            raise InputError(f"{f}.from_trace", "a workload.trace with timestamps", where=where)
        rates = from_timestamps(trace_times, period)
        if len(rates) > MAX_PERIODS:
            raise InputError(f"{f}.period_s", f"a period giving at most {MAX_PERIODS} periods over the trace",
                             f"{len(rates)} periods", where=where)
        return RateProfile(rates, period, lag, "trace timestamps")
    vals = raw["rates"]
    if not isinstance(vals, list) or not vals:
        raise InputError(f"{f}.rates", "a non-empty list of rates (req/s)", vals, where=where)
    if len(vals) > MAX_PERIODS:
        raise InputError(f"{f}.rates", f"at most {MAX_PERIODS} periods", len(vals), where=where)
    rates = tuple(positive(v, f"{f}.rates[{i}]", where, allow_zero=True, upper=1e7) for i, v in enumerate(vals))
    return RateProfile(rates, period, lag)
