"""The capacity table: the one seam between serving (which fills it) and optimising (which reads it).

For each candidate instance type (accelerator × TP/PP/EP/data-parallel attention × role) and each
workload bucket it holds, as plain numbers:

- ``capacity_rps``: the highest request rate one instance sustains with the bucket's TTFT and TPOT
  at the SLO percentile, times the target utilisation (0 when it cannot meet the SLO at any rate);
- ``binds``: what limits that rate (``ttft``, ``tpot``, a concurrency cap, ``kv_link``, ``memory``);
- ``ttft_s`` / ``tpot_s``: the predicted latency at the SLO percentile when the instance carries
  ``LOADS[j]`` × its capacity of that bucket (prefill rows include the KV transfer);
- ``ttft_floor_s`` / ``tpot_floor_s``: the same on an idle instance (what an SLO must allow at least).

The optimiser (``planner.optimise``) needs nothing else; a spreadsheet can pivot ``to_frame()``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LOADS: tuple[float, ...] = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
"""Shares of a candidate's capacity at which the table records the predicted latency."""


def group_label(accelerator: str, tp: int, pp: int, ep: int, dp_attn: bool, role: str,
                token_budget: int | None = None) -> str:
    """The name a candidate, a plan group and a routing rule share: ``H100-SXM TP4·PP2·EP4·DPA decode``;
    ``token_budget`` (given for the candidates tried with a token budget of their own besides the
    engine's, ``serving.table``) is named too, ``H100-SXM TP2·TB2048 colocated``, so that two groups
    differing only in it keep apart in the routing and the router config."""
    par = f"TP{tp}" + (f"·PP{pp}" if pp > 1 else "") + (f"·EP{ep}" if ep > 1 else "")
    tb = f"·TB{token_budget}" if token_budget else ""
    return f"{accelerator} {par}{'·DPA' if dp_attn else ''}{tb} {role}"


BUDGET_VARIANT = "|tb"
"""Marks a candidate key tried with its own token budget (``serving.table``)."""


@dataclass(frozen=True)
class CandidateInfo:
    """One instance type the optimiser may buy (plain data)."""

    key: str
    accelerator: str
    vendor: str
    family: str
    tp: int
    pp: int
    ep: int
    dp_attn: bool
    role: str
    gpus: int
    price_per_hour: float
    watts: float
    engine: str
    precision: str
    kv_dtype: str
    token_budget: int
    max_seqs: int
    memory_fraction: float
    max_kv_tokens: int
    pool: int = 1
    """Fleet tier: capacities assume at least this many instances behind one least-outstanding balancer
    (one G/G/pool queue), so the plan must buy at least ``pool`` of them to use this row."""
    base: str = ""
    """Key of the instance type without the tier (rows of one type share it; at most one is used)."""

    @property
    def label(self) -> str:
        tb = self.token_budget if BUDGET_VARIANT in self.key else None
        return group_label(self.accelerator, self.tp, self.pp, self.ep, self.dp_attn, self.role, tb)


@dataclass(frozen=True)
class BucketInfo:
    """One request-size bucket (plain data): length ranges, representative sizes and share of requests."""

    index: int
    isl_lo: int
    isl_hi: int
    osl_lo: int
    osl_hi: int
    isl_mean: float
    osl_mean: float
    isl_tail: float
    share: float


@dataclass(frozen=True)
class Rejection:
    """Why an accelerator produced no usable candidate."""

    accelerator: str
    reason: str


def _frozen(a: Any, ndim: int) -> np.ndarray:
    arr = np.array(a, dtype=float, ndmin=ndim)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class CapacityTable:
    """Candidates × buckets: capacities, what binds, and predicted latencies (module docstring)."""

    candidates: tuple[CandidateInfo, ...]
    buckets: tuple[BucketInfo, ...]
    capacity_rps: np.ndarray
    binds: tuple[tuple[str, ...], ...]
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    ttft_floor_s: np.ndarray
    tpot_floor_s: np.ndarray
    percentile: float
    target_utilisation: float
    rejected: tuple[Rejection, ...] = ()
    pools: tuple[int, ...] = (1,)
    loads: tuple[float, ...] = field(default=LOADS)

    def __post_init__(self) -> None:
        nc, nb = len(self.candidates), len(self.buckets)
        object.__setattr__(self, "capacity_rps", _frozen(self.capacity_rps, 2).reshape(nc, nb))
        for name in ("ttft_s", "tpot_s"):
            object.__setattr__(self, name, _frozen(getattr(self, name), 3).reshape(nc, nb, len(self.loads)))
        for name in ("ttft_floor_s", "tpot_floor_s"):
            object.__setattr__(self, name, _frozen(getattr(self, name), 2).reshape(nc, nb))
        if len({c.key for c in self.candidates}) != nc:
            raise ValueError("CapacityTable: candidate keys must be unique")

    # --- lookups ----------------------------------------------------------------------
    def index(self, key: str) -> int:
        return self._index[key]

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {c.key: i for i, c in enumerate(self.candidates)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def candidate(self, key: str) -> CandidateInfo:
        return self.candidates[self.index(key)]

    def useful(self, i: int) -> bool:
        """Candidate ``i`` meets the SLO for at least one bucket."""
        return bool(self.capacity_rps[i].max(initial=0.0) > 0)

    def latency_at(self, i: int, b: int, load: float) -> tuple[float, float]:
        """(TTFT, TPOT) at the SLO percentile of candidate ``i`` serving bucket ``b`` at ``load`` × its
        capacity, interpolated linearly between the recorded loads."""
        load = min(max(load, 0.0), 1.0)
        return (float(np.interp(load, self.loads, self.ttft_s[i, b])),
                float(np.interp(load, self.loads, self.tpot_s[i, b])))

    # --- plain data out ---------------------------------------------------------------
    def to_frame(self):
        """One row per (candidate, bucket): the user-facing capacity table."""
        import pandas as pd

        rows = []
        pct = f"p{self.percentile:g}"
        at = self.loads.index(1.0) if 1.0 in self.loads else len(self.loads) - 1
        for i, c in enumerate(self.candidates):
            for b, bk in enumerate(self.buckets):
                cap = float(self.capacity_rps[i, b])
                rows.append({
                    **{k: v for k, v in asdict(c).items()}, "bucket": b, "isl": f"{bk.isl_lo}-{bk.isl_hi}",
                    "osl": f"{bk.osl_lo}-{bk.osl_hi}", "isl_mean": bk.isl_mean, "osl_mean": bk.osl_mean,
                    "capacity_rps": cap, "binds": self.binds[i][b],
                    "capacity_rps_per_dollar_hour": cap / c.price_per_hour if c.price_per_hour else math.inf,
                    f"ttft_{pct}_s": float(self.ttft_s[i, b, at]) if cap > 0 else None,
                    f"tpot_{pct}_s": float(self.tpot_s[i, b, at]) if cap > 0 and c.role != "prefill" else None,
                    "ttft_idle_s": float(self.ttft_floor_s[i, b]) if c.role != "decode" else None,
                    "tpot_idle_s": float(self.tpot_floor_s[i, b]) if c.role != "prefill" else None,
                })
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: lists, not arrays; ``from_dict`` reads it back."""
        return {
            "candidates": [asdict(c) for c in self.candidates], "buckets": [asdict(b) for b in self.buckets],
            "capacity_rps": self.capacity_rps.tolist(), "binds": [list(b) for b in self.binds],
            "ttft_s": self.ttft_s.tolist(), "tpot_s": self.tpot_s.tolist(),
            "ttft_floor_s": self.ttft_floor_s.tolist(), "tpot_floor_s": self.tpot_floor_s.tolist(),
            "percentile": self.percentile, "target_utilisation": self.target_utilisation,
            "rejected": [asdict(r) for r in self.rejected], "pools": list(self.pools), "loads": list(self.loads),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CapacityTable:
        def inf(x: Any) -> Any:
            return np.nan_to_num(np.array(x, dtype=float), nan=math.inf)

        return cls(
            candidates=tuple(CandidateInfo(**c) for c in d["candidates"]),
            buckets=tuple(BucketInfo(**b) for b in d["buckets"]), capacity_rps=np.array(d["capacity_rps"]),
            binds=tuple(tuple(b) for b in d["binds"]), ttft_s=inf(d["ttft_s"]), tpot_s=inf(d["tpot_s"]),
            ttft_floor_s=inf(d["ttft_floor_s"]), tpot_floor_s=inf(d["tpot_floor_s"]), percentile=d["percentile"],
            target_utilisation=d["target_utilisation"], rejected=tuple(Rejection(**r) for r in d["rejected"]),
            pools=tuple(d.get("pools", (1,))), loads=tuple(d.get("loads", LOADS)))

    def restrict(self, keep: list[int]) -> CapacityTable:
        """The table of candidates ``keep`` only (same buckets)."""
        return CapacityTable(
            tuple(self.candidates[i] for i in keep), self.buckets, self.capacity_rps[keep],
            tuple(self.binds[i] for i in keep), self.ttft_s[keep], self.tpot_s[keep], self.ttft_floor_s[keep],
            self.tpot_floor_s[keep], self.percentile, self.target_utilisation, self.rejected, self.pools, self.loads)
