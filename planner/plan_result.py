"""The plan a user gets: groups, per-bucket latency, routing, alternatives; built from the capacity
table and the solver's solution alone (no call back into serving)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from planner.capacity import CapacityTable, Rejection, group_label
from planner.optimise.ilp import Solution, input_classes


@dataclass(frozen=True)
class Group:
    """Instances of one candidate in the plan, with what is needed to launch and reproduce them."""

    accelerator: str
    role: str
    tp: int
    pp: int
    ep: int
    dp_attn: bool
    instances: int
    gpus: int
    cost_per_hour: float
    watts: float
    utilisation: float
    headroom: float
    engine: str
    precision: str
    kv_dtype: str
    token_budget: int
    max_seqs: int
    memory_fraction: float
    spare_instances: int
    pool: int
    """Instances the TTFT queueing assumes behind the group's balancer (its fleet tier)."""
    bucket_shares: dict[int, float]
    label: str = ""
    """The name the routing table and the router config give the group (``capacity.group_label``)."""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", group_label(self.accelerator, self.tp, self.pp, self.ep, self.dp_attn,
                                                          self.role))


@dataclass(frozen=True)
class BucketReport:
    index: int
    isl: str
    osl: str
    rate_rps: float
    share_colocated: float
    ttft_s: float
    tpot_s: float
    served_by: str


@dataclass(frozen=True)
class Route:
    """How a router sends requests whose prompt is in ``isl`` tokens: share per group label."""

    isl: str
    shares: dict[str, float]


@dataclass(frozen=True)
class Alternative:
    name: str
    status: str
    cost_per_hour: float | None
    delta_pct: float | None
    total_gpus: int | None
    detail: str


@dataclass(frozen=True)
class Plan:
    """A recommendation. SI units; ``to_dict`` is the JSON schema; ``to_frame`` one row per group."""

    scenario: str
    model: str
    engine: str
    precision: str
    kv_dtype: str
    status: str
    objective: str
    objective_value: float | None
    cost_per_hour: float
    cost_per_million_output_tokens: float
    cost_per_million_total_tokens: float
    total_gpus: int
    watts: float
    groups: tuple[Group, ...]
    buckets: tuple[BucketReport, ...]
    routing: tuple[Route, ...]
    predicted: dict[str, float]
    slo: dict[str, Any]
    rate_rps: float
    output_tokens_per_s: float
    binding: tuple[str, ...]
    alternatives: tuple[Alternative, ...]
    rejected: tuple[Rejection, ...]
    solve_s: float
    gap: float | None
    candidates: int
    balancer: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    scenario_file: str | None = None
    """The scenario file the plan was made from (what ``planner simulate --plan`` replays with), if any."""
    energy: dict[str, Any] = field(default_factory=dict)
    """Draw at the planned load (``planner.energy.plan_energy``): power_w, kwh_per_day, joules_per_output_token."""
    currency: str = "USD"
    """The currency of every cost (``pricing.currency``)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["groups"] = [asdict(g) | {"bucket_shares": {str(k): v for k, v in g.bucket_shares.items()}}
                       for g in self.groups]
        d["notes"] = list(self.notes)
        return d

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in asdict(g).items() if k != "bucket_shares"} for g in self.groups])

    def buckets_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(b) for b in self.buckets])

    def alternatives_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(a) for a in self.alternatives])

    def assumptions(self):
        import pandas as pd

        rows = [("model", self.model), ("engine", self.engine), ("precision", self.precision),
                ("kv_dtype", self.kv_dtype), ("rate_rps", self.rate_rps), ("objective", self.objective)]
        rows += [(f"slo.{k}", v) for k, v in self.slo.items()]
        rows += [("balancer", self.balancer), ("solve_s", self.solve_s), ("gap", self.gap),
                 ("candidates", self.candidates)]
        rows += [("note", n) for n in self.notes]
        return pd.DataFrame(rows, columns=["item", "value"])


def groups_of(table: CapacityTable, sol: Solution, spare: int) -> list[Group]:
    """Groups of the plan; ``utilisation`` is the share of the SLO-meeting capacity (goodput) the planned
    load uses, times the target utilisation, so headroom = 1 − utilisation."""
    out = []
    nb = len(table.buckets)
    for key, count in sorted(sol.counts.items(), key=lambda kv: -table.candidate(kv[0]).price_per_hour * kv[1]):
        c = table.candidate(key)
        shares = {b: sol.shares[(key, b)] for b in range(nb) if (key, b) in sol.shares}
        util = sol.load.get(key, 0.0) / count * table.target_utilisation if count else 0.0
        out.append(Group(
            accelerator=c.accelerator, role=c.role, tp=c.tp, pp=c.pp, ep=c.ep, dp_attn=c.dp_attn, instances=count,
            gpus=count * c.gpus, cost_per_hour=count * c.price_per_hour, watts=count * c.watts, utilisation=util,
            headroom=1.0 - util, engine=c.engine, precision=c.precision, kv_dtype=c.kv_dtype,
            token_budget=c.token_budget, max_seqs=c.max_seqs, memory_fraction=c.memory_fraction,
            spare_instances=spare, pool=c.pool if c.pool > 1 else (table.pools[0] if len(table.pools) == 1 else 1),
            bucket_shares=shares, label=c.label))
    return out


def bucket_reports(table: CapacityTable, sol: Solution, rates: list[float]) -> list[BucketReport]:
    """Latency per bucket at each serving group's planned load, read off the table's latency-vs-load
    curves: an instance whose load is a share u of its capacity runs each bucket at u × its capacity."""
    reports = []
    for b, bk in enumerate(table.buckets):
        ttft, tpot, colo, by = 0.0, 0.0, 0.0, []
        for (key, bb), share in sol.shares.items():
            if bb != b:
                continue
            i = table.index(key)
            c = table.candidates[i]
            count = sol.counts.get(key, 0)
            util = sol.load.get(key, 0.0) / count if count else 0.0
            t_q, p_q = table.latency_at(i, b, util)
            if c.role != "decode":
                ttft = max(ttft, t_q)
            if c.role != "prefill":
                tpot = max(tpot, p_q)
            colo += share if c.role == "colocated" else 0.0
            by.append(f"{c.label} {100 * share:.0f}%")
        reports.append(BucketReport(b, f"{bk.isl_lo}-{bk.isl_hi}", f"{bk.osl_lo}-{bk.osl_hi}", float(rates[b]),
                                    float(colo), float(ttft), float(tpot), "; ".join(by)))
    return reports


def routing_of(table: CapacityTable, sol: Solution) -> list[Route]:
    """The routing rule per input-length range: every output bucket of one range splits alike (the
    ILP's shares are per input class), so this is what a prompt-length router implements."""
    out = []
    for members in input_classes(table):
        bk = table.buckets[members[0]]
        by_key = {key: s for (key, b), s in sol.shares.items() if b in members}  # one share per class and key
        shares: dict[str, float] = {}
        for key, s in by_key.items():  # keys that share a label (fleet tiers of one candidate) add up
            label = table.candidate(key).label
            shares[label] = shares.get(label, 0.0) + s
        if shares:
            out.append(Route(f"{bk.isl_lo}-{bk.isl_hi}", shares))
    return out


LABELS = {"ttft": "TTFT SLO", "tpot": "TPOT SLO", "kv_capacity": "KV-cache capacity", "max_seqs": "sequence cap",
          "token_budget": "token budget", "capacity": "instance throughput", "compute": "prefill compute",
          "kv_link": "KV-transfer link", "memory": "memory"}


def binding_of(table: CapacityTable, sol: Solution, availability: dict[str, int],
               budget: float | None) -> list[str]:
    """What binds the plan: limits at their bound, then per-instance limits by how many routes they bind."""
    out = []
    for acc_id, limit in availability.items():
        used = sum(table.candidate(k).gpus * n for k, n in sol.counts.items()
                   if table.candidate(k).accelerator == acc_id)
        if used >= limit > 0:
            out.append(f"availability of {acc_id} ({limit} GPUs)")
    if budget is not None:
        cost = sum(table.candidate(k).price_per_hour * n for k, n in sol.counts.items())
        if cost >= 0.98 * budget:
            out.append(f"budget (${budget:,.2f}/h)")
    reasons: dict[str, int] = {}
    for k, b in sol.shares:
        r = table.binds[table.index(k)][b]
        reasons[r] = reasons.get(r, 0) + 1
    for r, _ in sorted(reasons.items(), key=lambda kv: -kv[1]):
        out.append(f"per-instance limit: {LABELS.get(r, r)}")
    return out


def cost_of(table: CapacityTable, sol: Solution) -> tuple[float, int]:
    """($/hour, GPUs) of a solution."""
    cost = sum(table.candidate(k).price_per_hour * n for k, n in sol.counts.items())
    gpus = sum(table.candidate(k).gpus * n for k, n in sol.counts.items())
    return cost, gpus


def per_million(cost_per_hour: float, tokens_per_s: float) -> float:
    return cost_per_hour / (tokens_per_s * 3600) * 1e6 if tokens_per_s else math.inf
