"""One integer linear program for several models that share accelerator quotas and a budget.

Each model m brings its own capacity table and rates; its variables and its own constraints
(coverage, pairing, capacity, used, fleet tier, one tier) are exactly those of the single-model
ILP (``ilp.add_table``, names tagged by model). What couples the models:

  availability   Σ_m Σ_{c on type g} gpus_c·n_mc ≤ A_g        one quota per accelerator type
  budget         Σ_m Σ_c price_c·n_mc ≤ B                     one budget for the fleet

Objective  min Σ_m Σ_c w_c·n_mc  with the single-model weights (``ilp.weight``).

With one model the problem is the one ``ilp.solve`` builds. Instances are never shared between
models (each instance holds one model's weights), so the coupling is through the limits alone.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pulp

from planner.capacity import CapacityTable
from planner.optimise.ilp import Limits, Outcome, Solution, _run, add_shared, add_table, part_solution


@dataclass(frozen=True)
class JointSolution(Outcome):
    """The joint solve: overall status, objective and the solver's bound, and one ``Solution`` per model
    (in the order given; empty when no plan was found). Each part's ``objective`` is its own share
    Σ_c w_c·n_c; its ``bound`` is None (the bound is the joint problem's)."""

    status: str
    objective: float | None
    parts: tuple[Solution, ...] = ()
    bound: float | None = None
    solve_s: float = 0.0


def solve_joint(problems: Sequence[tuple[CapacityTable, Sequence[float]]],
                limits: Limits | None = None) -> JointSolution:
    """Cheapest instance counts for every (table, rates) at once under the shared ``limits``
    (availability per accelerator id, budget, spares, objective, solver settings)."""
    limits = limits or Limits()
    with warnings.catch_warnings():  # PuLP 3.x announces its 4.0 API on every variable
        warnings.simplefilter("ignore", DeprecationWarning)
        return _solve_joint(problems, limits)


def _solve_joint(problems: Sequence[tuple[CapacityTable, Sequence[float]]], limits: Limits) -> JointSolution:
    t0 = time.perf_counter()
    if not problems:
        raise ValueError("solve_joint: at least one (table, rates)")
    prob = pulp.LpProblem("fleet_plan", pulp.LpMinimize)
    parts = [add_table(prob, table, list(rates), limits, tag=f"m{j}") for j, (table, rates) in enumerate(problems)]
    prob += pulp.lpSum(p.objective for p in parts)
    add_shared(prob, parts, limits)
    if any(not p.idx for p in parts):  # a model with no candidate cannot be served at all
        return JointSolution("infeasible", None, solve_s=time.perf_counter() - t0)
    status, bound = _run(prob, limits, relax=False)
    elapsed = time.perf_counter() - t0
    if status not in ("optimal", "feasible"):
        return JointSolution(status, None, solve_s=elapsed)
    obj = float(pulp.value(prob.objective) or 0.0)
    if status == "optimal" and bound is None:
        bound = obj
    sols = tuple(part_solution(p, status, float(pulp.value(p.objective) or 0.0), None, elapsed) for p in parts)
    return JointSolution(status, obj, sols, bound, elapsed)
