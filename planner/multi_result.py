"""The plan for a fleet of several models: one ``Plan`` section per model plus the fleet's totals
and how much of each shared quota and of the budget it uses. Plain values; ``to_dict`` is the JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner.plan_result import Plan, per_million


@dataclass(frozen=True)
class Section:
    """One model's part of the fleet plan. ``alone_cost_per_hour``: the cost of its optimum planned on
    its own with the whole quota and budget (None when it has none); with the cost objective the
    section costs at least that."""

    name: str
    plan: Plan
    alone_cost_per_hour: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "alone_cost_per_hour": self.alone_cost_per_hour} | self.plan.to_dict()


@dataclass(frozen=True)
class MultiPlan:
    """Totals are sums over the sections; ``gpus_by_accelerator`` the GPUs of each type the fleet uses,
    against ``availability`` (the shared quota, by accelerator id; absent: unlimited)."""

    scenario: str
    status: str
    objective: str
    objective_value: float | None
    cost_per_hour: float
    cost_per_million_output_tokens: float
    total_gpus: int
    watts: float
    gpus_by_accelerator: dict[str, int]
    availability: dict[str, int]
    budget_per_hour: float | None
    binding: tuple[str, ...]
    models: tuple[Section, ...]
    solve_s: float
    gap: float | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    scenario_file: str | None = None

    def section(self, name: str) -> Section:
        for s in self.models:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "models"}
        d["binding"], d["notes"] = list(self.binding), list(self.notes)
        d["models"] = [s.to_dict() for s in self.models]
        return d

    def to_frame(self):
        """One row per group of every section, with the model's name first."""
        import pandas as pd

        frames = []
        for s in self.models:
            f = s.plan.to_frame()
            f.insert(0, "model", s.plan.model)
            f.insert(0, "name", s.name)
            frames.append(f)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def shared_binding(gpus_by_accelerator: dict[str, int], availability: dict[str, int], cost_per_hour: float,
                   budget_per_hour: float | None) -> list[str]:
    """Shared limits the fleet plan meets at their bound (a quota used up; the budget within 2%)."""
    out = [f"availability of {a} ({limit} GPUs, shared)" for a, limit in availability.items()
           if limit > 0 and gpus_by_accelerator.get(a, 0) >= limit]
    if budget_per_hour is not None and cost_per_hour >= 0.98 * budget_per_hour:
        out.append(f"budget (${budget_per_hour:,.2f}/h, shared)")
    return out


def fleet_totals(sections: list[Section]) -> dict[str, Any]:
    """cost_per_hour, cost_per_million_output_tokens, total_gpus, watts and gpus_by_accelerator of sections."""
    by_acc: dict[str, int] = {}
    for s in sections:
        for g in s.plan.groups:
            by_acc[g.accelerator] = by_acc.get(g.accelerator, 0) + g.gpus
    cost = sum(s.plan.cost_per_hour for s in sections)
    out_tps = sum(s.plan.output_tokens_per_s for s in sections)
    return {"cost_per_hour": cost, "cost_per_million_output_tokens": per_million(cost, out_tps),
            "total_gpus": sum(s.plan.total_gpus for s in sections), "watts": sum(s.plan.watts for s in sections),
            "gpus_by_accelerator": dict(sorted(by_acc.items()))}
