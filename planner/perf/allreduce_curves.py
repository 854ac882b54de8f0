"""Measured all-reduce curves per kind of scale-up fabric, and the time they give one all-reduce.

``planner/data/allreduce_curves.csv`` (written by ``scripts/gen_allreduce_curves.py``) holds, per
link kind (``scaleup.link_kind`` of ``hardware_db/*.yaml``: ``nvlink3-hgx``, ``nvlink4-hgx``,
``nvlink5-hgx``), GPU count ``n`` and message size ``S`` (bytes), the measured time ``t`` of one
all-reduce (``time_s``): the geometric mean (``measured_s``) of the training half
(``planner.calib.kernels.with_split``, seed 0) of the TensorRT-LLM custom all-reduce rows of aiconfigurator
(``ai-dynamo/aiconfigurator@095f58a5 systems/data/<system>/comm/trtllm/<version>/custom_allreduce_perf``,
bf16, 2/4/8 GPUs, 256 B to 1 GiB), made non-decreasing in ``S`` by isotonic regression (a few
small-message points within 5% of their neighbour are pooled). Each row keeps its ``source``.

For ``n`` GPUs with a curve of points ``(S_i, t_i)``, ``i = 0..k``, ascending in ``S``:

- inside the measured range, ``S_0 <= S <= S_k``: piecewise-linear in log-log,
  ``ln t = ln t_i + (ln S − ln S_i)·(ln t_{i+1} − ln t_i)/(ln S_{i+1} − ln S_i)``, so every table
  point is reproduced exactly;
- below it, alpha-beta anchored at the first point: ``t = t_0 − β_ab·(S_0 − S)`` with the ring's
  byte term ``β_ab = 2·(n−1)/n / (η·B_up)`` (Patarasuk & Yuan, JPDC 2009; ``η`` the profile's
  ``comm_eff``), capped at ``t_0/S_0`` so the time stays positive;
- above it, alpha-beta anchored at the last point, with the bandwidth the last measured segment
  shows: ``t = t_k + β_k·(S − S_k)``, ``β_k = (t_k − t_{k−1})/(S_k − S_{k−1})`` (``t_k/S_k`` should
  that slope not be positive). Large messages are bandwidth-bound, so the last segment is the
  measured incremental bus bandwidth of the fabric.

All three pieces meet at the edges (continuous) and rise with ``S`` (monotone, the table being
monotone). A GPU count between two measured counts ``n_a < n < n_b`` interpolates ``ln t``
linearly in the ring factor ``f(n) = (n−1)/n`` between the two curves' times; counts outside the
measured ones have no curve (the caller keeps alpha-beta).
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from planner.errors import PlannerError

TABLE = Path(__file__).resolve().parents[1] / "data" / "allreduce_curves.csv"
COLUMNS = ("link_kind", "gpus", "bytes", "time_s", "measured_s", "rows", "source")


@dataclass(frozen=True)
class AllReduceCurve:
    """Measured all-reduce times of one (link kind, GPU count): ``time_s[i]`` at ``bytes[i]`` (ascending)."""

    link_kind: str
    gpus: int
    bytes: tuple[float, ...]
    time_s: tuple[float, ...]
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.bytes) < 2 or len(self.bytes) != len(self.time_s):
            raise PlannerError(f"all-reduce curve {self.link_kind}/{self.gpus}: needs two or more (bytes, time) points")
        if any(b <= a for a, b in zip(self.bytes, self.bytes[1:])) or self.bytes[0] <= 0:
            raise PlannerError(f"all-reduce curve {self.link_kind}/{self.gpus}: bytes must be positive and ascending")
        if any(t <= 0 for t in self.time_s):
            raise PlannerError(f"all-reduce curve {self.link_kind}/{self.gpus}: times must be positive")

    @cached_property
    def _logs(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(ln bytes, ln time_s), computed once per curve."""
        return tuple(map(math.log, self.bytes)), tuple(map(math.log, self.time_s))

    def _edge_betas(self, up_bw_bytes_per_s: float) -> tuple[float, float]:
        """Byte terms (s/B) of the alpha-beta pieces below and above the measured sizes."""
        x, y, n = self.bytes, self.time_s, self.gpus
        beta_lo = min(2.0 * (n - 1) / n / up_bw_bytes_per_s, y[0] / x[0])
        slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
        return beta_lo, (slope if slope > 0 else y[-1] / x[-1])

    @property
    def min_bytes(self) -> float:
        return self.bytes[0]

    @property
    def max_bytes(self) -> float:
        return self.bytes[-1]

    def time_at_s(self, nbytes, up_bw_bytes_per_s: float):
        """Time of one all-reduce of ``nbytes`` (scalar or array) on this curve (module docstring);
        ``up_bw_bytes_per_s`` is the scale-up bandwidth already × η, for the alpha-beta piece below the range."""
        x, y = self.bytes, self.time_s
        beta_lo, beta_hi = self._edge_betas(up_bw_bytes_per_s)
        if np.ndim(nbytes) == 0:  # scalar fast path (one step at a time)
            v = float(nbytes)
            if v < x[0]:
                return y[0] - beta_lo * (x[0] - v)
            if v > x[-1]:
                return y[-1] + beta_hi * (v - x[-1])
            i = min(bisect_right(x, v), len(x) - 1)
            log_x, log_y = self._logs
            w = (math.log(v) - log_x[i - 1]) / (log_x[i] - log_x[i - 1])
            return math.exp(log_y[i - 1] + w * (log_y[i] - log_y[i - 1]))
        s = np.asarray(nbytes, dtype=float)
        log_x, log_y = self._logs
        inside = np.exp(np.interp(np.log(np.clip(s, x[0], x[-1])), log_x, log_y))
        below = y[0] - beta_lo * (x[0] - s)
        above = y[-1] + beta_hi * (s - x[-1])
        out = np.where(s < x[0], below, np.where(s > x[-1], above, inside))
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class LinkCurves:
    """The measured all-reduce curves of one link kind, one per measured GPU count (ascending)."""

    link_kind: str
    curves: tuple[AllReduceCurve, ...]

    @property
    def gpus(self) -> tuple[int, ...]:
        return tuple(c.gpus for c in self.curves)

    def covers(self, gpus: int) -> bool:
        """True when ``gpus`` lies between the smallest and largest measured GPU count."""
        return bool(self.curves) and self.curves[0].gpus <= gpus <= self.curves[-1].gpus

    def curve(self, gpus: int) -> AllReduceCurve | None:
        """The curve measured at exactly ``gpus`` GPUs, if any."""
        for c in self.curves:
            if c.gpus == gpus:
                return c
        return None

    def time_s(self, nbytes, gpus: int, up_bw_bytes_per_s: float):
        """All-reduce of ``nbytes`` over ``gpus`` GPUs of one domain (module docstring); raises when
        ``gpus`` is outside the measured counts (``covers``)."""
        if not self.covers(gpus):
            raise PlannerError(f"no measured all-reduce curve of {self.link_kind} for {gpus} GPUs "
                               f"(measured: {', '.join(map(str, self.gpus))})")
        exact = self.curve(gpus)
        if exact is not None:
            return exact.time_at_s(nbytes, up_bw_bytes_per_s)
        lo = max((c for c in self.curves if c.gpus < gpus), key=_gpus_key)
        hi = min((c for c in self.curves if c.gpus > gpus), key=_gpus_key)
        ring = [(g - 1.0) / g for g in (lo.gpus, gpus, hi.gpus)]
        w = (ring[1] - ring[0]) / (ring[2] - ring[0])
        t_lo = lo.time_at_s(nbytes, up_bw_bytes_per_s)
        t_hi = hi.time_at_s(nbytes, up_bw_bytes_per_s)
        if np.ndim(t_lo) == 0:
            return math.exp((1.0 - w) * math.log(t_lo) + w * math.log(t_hi))
        return np.exp((1.0 - w) * np.log(t_lo) + w * np.log(t_hi))


def _gpus_key(c: AllReduceCurve) -> int:
    return c.gpus


def parse_curves(rows: list[dict[str, str]], where: str = "all-reduce curves") -> Mapping[str, LinkCurves]:
    """Curves by link kind from rows with ``COLUMNS`` (one row per measured point)."""
    points: dict[tuple[str, int], list[tuple[float, float, str]]] = {}
    for i, row in enumerate(rows):
        try:
            key = (row["link_kind"].strip(), int(row["gpus"]))
            points.setdefault(key, []).append((float(row["bytes"]), float(row["time_s"]), row["source"].strip()))
        except (KeyError, ValueError, AttributeError) as exc:
            raise PlannerError(f"{where}: row {i + 2} lacks a readable {', '.join(COLUMNS)}: {exc}") from None
    by_kind: dict[str, list[AllReduceCurve]] = {}
    for (kind, gpus), pts in sorted(points.items()):
        pts.sort()
        by_kind.setdefault(kind, []).append(AllReduceCurve(
            kind, gpus, tuple(p[0] for p in pts), tuple(p[1] for p in pts),
            tuple(sorted({s for p in pts for s in p[2].split("; ") if s}))))
    return MappingProxyType({k: LinkCurves(k, tuple(sorted(v, key=_gpus_key))) for k, v in by_kind.items()})


@lru_cache(maxsize=4)
def load_curves(path: str | None = None) -> Mapping[str, LinkCurves]:
    """The shipped table (or ``path``), read once and cached."""
    table = Path(path) if path else TABLE
    with table.open(newline="") as fh:
        return parse_curves(list(csv.DictReader(fh)), str(table))


def link_curves(link_kind: str) -> LinkCurves | None:
    """The shipped curves of ``link_kind``; None for an empty kind or one the table lacks."""
    if not link_kind:
        return None
    return load_curves().get(link_kind)
