"""Replay a whole plan through the discrete-event simulator and say whether it meets the SLO.

``verify_plan(plan, scenario)`` rebuilds every group of the plan (its ``Deployment`` from the
group's accelerator, TP/PP/EP, data-parallel attention, precision, KV dtype, engine and engine
settings), draws ``n_requests`` requests and replays them all (``planner.serving.sim_fleet``):

1. **Requests** (``numpy.random.default_rng(seed)``): lengths from the scenario's workload (its
   trace pairs when it has them), arrivals a renewal process at the plan's rate with the
   scenario's arrival CV (``poisson_arrivals``; a trace's CV comes from its timestamps). Lengths
   past the model's context are cut as the plan cut them (prompt shortened to leave the answer
   room).
2. **Buckets**: each request goes to the plan bucket whose input and output ranges hold it; a
   length outside every range (a tail the bucketing sample did not reach, or an empty cell) is
   clipped to the nearest bucket's bounds and counted in ``clipped``.
3. **Routing**: a request of bucket b goes to a colocated or prefill group with probability
   equal to that group's share of b (shares are per input-length class, so every output bucket of
   one class splits alike); from a prefill group, to a decode group of the same vendor (any vendor
   with ``cross_vendor_kv``) with probability proportional to that group's share of b. Colocated
   groups put their N instances behind a least-outstanding-requests balancer; a prefill group's
   instances share one FCFS queue and send KV caches over the scale-out link of one prefill
   instance (accelerator ``scaleout_bw_bytes_per_s`` × GPUs per instance).
4. **Attainment**: the first ``warmup_share`` of arrivals warm the fleet up and are not
   measured. A request meets the SLO when it finished with TTFT <= ``slo.ttft_s`` and TPOT =
   (finish − first token)/(osl − 1) <= ``slo.tpot_s`` (the limits the plan set). A bucket meets
   when its share of such requests is at least the SLO attainment a (percentile/100 by default)
   less a tolerance of two binomial standard errors, max(0.005, 2·√(a(1 − a)/n_b)); the plan
   meets when every bucket does.
5. **Over-provisioning**: groups whose components share no engine replay apart (same requests,
   same routes), so for each group, largest first, a bisection over 1..planned instances with the
   others at their planned counts finds the fewest that still meet the SLO in every bucket; the
   minima are then replayed together (and raised one at a time until they meet, within
   ``max_replays``). ratio = planned GPUs / sufficient GPUs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from planner._yaml import read_text
from planner.deployment import Deployment, make_deployment
from planner.errors import InputError, PlannerError
from planner.hardware import HardwareDB, default_hardware
from planner.models import get_model
from planner.plan_groups import check_group, check_one_rate_plan, label_of
from planner.plan_result import Plan
from planner.planning import coerce
from planner.profile import EngineSettings, load_profile
from planner.scenario import Scenario
from planner.serving.sim_fleet import FleetRun, Pool, simulate_fleet
from planner.serving.simulate import poisson_arrivals
from planner.verify_checks import _check
from planner.verify_result import BucketCheck, GroupCheck, Verification
from planner.workload import prompt_tail

__all__ = ["BucketCheck", "GroupCheck", "Verification", "load_plan", "verify_plan"]

WARMUP_SHARE = 0.1
MAX_REQUESTS = 200_000
RULES = (
    "arrivals: renewal process at the plan's rate with the scenario's arrival CV, seeded",
    "routing: front group by its share of the bucket; decode group of the same vendor by its share",
    "colocated groups: least-outstanding-requests balancer; prefill groups: one shared FCFS queue",
    "KV transfer over the scale-out link of one prefill instance (bandwidth x GPUs per instance)",
    "a bucket meets when attainment >= required - max(0.005, 2*sqrt(a(1-a)/n)) (two binomial standard errors)",
    "prompts beyond the workload's prompt at the SLO percentile (the longest any TTFT tail is planned for) may "
    "miss TTFT in their bucket; the plan meets when every bucket does and so does the attainment over all requests",
)


@dataclass(frozen=True, eq=False)
class _Replay:
    """Everything fixed across replays: requests, buckets, routes, deployments, components."""

    arrival_s: np.ndarray
    isl: np.ndarray
    osl: np.ndarray
    bucket: np.ndarray
    front: np.ndarray
    back: np.ndarray
    measured: np.ndarray
    groups: tuple[dict[str, Any], ...]
    deps: tuple[Deployment, ...]
    links: tuple[float, ...]
    components: tuple[tuple[int, ...], ...]
    ttft_s: float | None
    tpot_s: float | None
    required: float
    isl_cap: float = math.inf
    """Prompts longer than this may miss TTFT in their bucket (``planner.workload.prompt_tail``)."""


def _range(text: object, where: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in str(text).split("-"))
    except ValueError:
        raise PlannerError(f"plan: {where}: expected a token range such as 14-515, got {text!r}") from None
    return lo, hi


GROUP_KEYS = ("accelerator", "role", "tp", "pp", "ep", "dp_attn", "instances", "engine", "precision", "kv_dtype",
              "token_budget", "max_seqs", "memory_fraction", "bucket_shares")
"""The group fields a replay reads."""


def _plan_dict(plan: Plan | dict[str, Any]) -> dict[str, Any]:
    d = plan.to_dict() if isinstance(plan, Plan) else plan
    if not isinstance(d, dict):
        raise PlannerError(f"plan: expected a plan (the JSON of planner plan --json), got {type(d).__name__}")
    check_one_rate_plan(d, "a replay")
    missing = [k for k in ("model", "rate_rps", "slo", "groups", "buckets") if k not in d]
    if missing:
        raise PlannerError(f"plan: missing {', '.join(missing)}; give the JSON written by planner plan --json")
    if not isinstance(d["groups"], list) or not d["groups"]:
        raise PlannerError("plan: groups: expected a non-empty list of groups to replay")
    return d


def load_plan(path: str | Path) -> dict[str, Any]:
    """A plan from the JSON of ``planner plan --json`` (with or without ``--verify``)."""
    p = Path(path)
    try:
        d = json.loads(read_text(p, "plan"))
    except json.JSONDecodeError as exc:
        raise PlannerError(f"plan {p}: not JSON ({exc.msg} at line {exc.lineno}); give the output of "
                           f"planner plan --json") from None
    return _plan_dict(d)


def _scenario_of(d: dict[str, Any], scenario: Scenario | str | Path | dict | None) -> Scenario:
    if scenario is not None:
        return coerce(scenario)
    f = d.get("scenario_file")
    if not f:
        raise PlannerError("scenario: the plan names no scenario file (made from flags or with --isl/--osl); "
                           "give --scenario SCENARIO.yaml")
    if not Path(f).is_file():
        raise PlannerError(f"scenario: {f} (named by the plan) is not a file; give --scenario SCENARIO.yaml")
    return coerce(str(f))


def _deployment(g: dict[str, Any], model: str, sc: Scenario, hw: HardwareDB) -> Deployment:
    """The group's deployment; a custom profile file of the scenario is used when its engine name matches."""
    try:
        engine: Any = g["engine"]
        prof = load_profile(sc.engine)
        if prof.engine == engine:
            engine = prof
        settings = EngineSettings(token_budget=int(g["token_budget"]), max_seqs=int(g["max_seqs"]),
                                  memory_fraction=float(g["memory_fraction"]),
                                  speculative=sc.engine_settings.speculative,  # the scenario's, as planned
                                  prefix_cache_hit=sc.engine_settings.prefix_cache_hit)
        return make_deployment(model, g["accelerator"], int(g["tp"]), int(g["pp"]), int(g["ep"]), g["precision"],
                               g["kv_dtype"], engine, hardware_db=hw, dp_attn=bool(g["dp_attn"]), settings=settings)
    except KeyError as exc:
        raise PlannerError(f"plan: group lacks {exc.args[0]!r}; give the JSON written by planner plan --json") from None


def _assign(isl: np.ndarray, osl: np.ndarray, buckets: list[dict[str, Any]]) -> tuple[np.ndarray, int]:
    """Bucket index per request; lengths outside every range are clipped in place to the nearest bucket.

    An input class is the buckets that share an input range's lower end: buckets reaching past the
    model's context are planned truncated to it, each by its own answer length (``planning._fit_context``),
    so the top class's buckets end at different input lengths and are still one class. A request picks
    its class by input length, its bucket in the class by output length, and is clipped to that bucket."""
    ranges = [(_range(b["isl"], f"bucket {b['index']}"), _range(b["osl"], f"bucket {b['index']}")) for b in buckets]
    los = sorted({r[0][0] for r in ranges})
    members = {lo: [k for k, r in enumerate(ranges) if r[0][0] == lo] for lo in los}
    his = np.array([max(ranges[k][0][1] for k in members[lo]) for lo in los])
    out = np.empty(isl.size, dtype=np.int64)
    clipped = 0
    for i in range(isl.size):
        c = los[min(int(np.searchsorted(his, isl[i])), len(los) - 1)]
        y = int(osl[i])
        k = min(members[c], key=lambda m: max(ranges[m][1][0] - y, y - ranges[m][1][1], 0))
        x = min(max(int(isl[i]), ranges[k][0][0]), ranges[k][0][1])
        lo, hi = ranges[k][1]
        y2 = min(max(y, lo), hi)
        clipped += (x != isl[i]) or (y2 != y)
        isl[i], osl[i], out[i] = x, y2, k
    return out, clipped


def _route(bucket: np.ndarray, nb: int, groups: list[dict[str, Any]], vendors: list[str], cross_vendor: bool,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Front group by its share of the bucket; a prefill route's decode group by share within its vendor."""
    front = np.full(bucket.size, -1, dtype=np.int64)
    back = np.full(bucket.size, -1, dtype=np.int64)
    for b in range(nb):
        idx = np.flatnonzero(bucket == b)
        if not idx.size:
            continue
        share = [float(g["bucket_shares"].get(str(b), g["bucket_shares"].get(b, 0.0))) for g in groups]
        fronts = [k for k, g in enumerate(groups) if g["role"] != "decode" and share[k] > 0]
        if not fronts:
            raise PlannerError(f"plan: bucket {b} is routed to no colocated or prefill group")
        p = np.array([share[k] for k in fronts])
        front[idx] = np.array(fronts)[rng.choice(len(fronts), idx.size, p=p / p.sum())]
        for f in fronts:
            if groups[f]["role"] != "prefill":
                continue
            sub = idx[front[idx] == f]
            backs = [k for k, g in enumerate(groups) if g["role"] == "decode" and share[k] > 0
                     and (cross_vendor or vendors[k] == vendors[f])]
            if not backs:
                raise PlannerError(f"plan: bucket {b} has prefill on {groups[f]['accelerator']} but no decode group "
                                   f"of its vendor")
            q = np.array([share[k] for k in backs])
            back[sub] = np.array(backs)[rng.choice(len(backs), sub.size, p=q / q.sum())]
    return front, back


def _components(front: np.ndarray, back: np.ndarray, n_groups: int) -> tuple[tuple[int, ...], ...]:
    """Groups linked by a prefill→decode route replay together; the rest alone."""
    parent = list(range(n_groups))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for f, b in {(int(f), int(b)) for f, b in zip(front, back) if b >= 0}:
        parent[root(f)] = root(b)
    comps: dict[int, list[int]] = {}
    for g in range(n_groups):
        comps.setdefault(root(g), []).append(g)
    return tuple(tuple(c) for c in comps.values())


def _prepare(d: dict[str, Any], sc: Scenario, n: int, seed: int, warmup_share: float, hw: HardwareDB) -> tuple[
        _Replay, int]:
    model = get_model(sc.model)
    if model.id != d["model"]:
        raise PlannerError(f"scenario: model {model.id} is not the plan's {d['model']}; give the plan's scenario")
    groups = [check_group(i, g, GROUP_KEYS) for i, g in enumerate(d["groups"])]
    deps = tuple(_deployment(g, model.id, sc, hw) for g in groups)
    links = tuple(dep.accelerator.scaleout_bw_bytes_per_s * dep.parallel.gpus for dep in deps)
    rng = np.random.default_rng(seed)
    isl, osl = (np.asarray(a, dtype=np.int64).copy() for a in sc.workload.sample_requests(n, rng))
    arrivals = poisson_arrivals(float(d["rate_rps"]), n, rng, sc.workload.arrival_cv)
    if model.max_context:
        osl = np.minimum(osl, model.max_context - 1)
        isl = np.minimum(isl, np.maximum(model.max_context - osl, 1))
    bucket, clipped = _assign(isl, osl, list(d["buckets"]))
    front, back = _route(bucket, len(d["buckets"]), groups, [dep.accelerator.vendor for dep in deps],
                         sc.cross_vendor_kv, rng)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(arrivals, kind="stable")] = np.arange(n)
    slo = d["slo"]
    pct = float(slo.get("percentile", 99.0))
    rep = _Replay(arrivals, isl, osl, bucket, front, back, rank >= math.ceil(warmup_share * n), tuple(groups), deps,
                  links, _components(front, back, len(groups)), slo.get("ttft_s"), slo.get("tpot_s"),
                  float(slo.get("attainment") or pct / 100), prompt_tail(sc.workload, pct))
    return rep, clipped


def _replay(rep: _Replay, comp: tuple[int, ...], counts: dict[int, int]) -> tuple[np.ndarray, FleetRun]:
    """Replay one component at ``counts``: (its request indices, the run)."""
    local = {g: k for k, g in enumerate(comp)}
    pools = [Pool(rep.deps[g], rep.groups[g]["role"], counts[g], rep.links[g]) for g in comp]
    idx = np.flatnonzero(np.isin(rep.front, comp))
    back = np.array([local[int(b)] if b >= 0 else -1 for b in rep.back[idx]], dtype=np.int64)
    front = np.array([local[int(f)] for f in rep.front[idx]], dtype=np.int64)
    return idx, simulate_fleet(pools, rep.arrival_s[idx], rep.isl[idx], rep.osl[idx], front, back)


class _Search:
    """Replays with per-component caching of outcomes; counts replays."""

    def __init__(self, rep: _Replay, plan_buckets: list[dict[str, Any]], pct: float, max_replays: int) -> None:
        self.rep, self.plan_buckets, self.pct, self.left = rep, plan_buckets, pct, max_replays
        self.replays = 0
        n = rep.arrival_s.size
        self.first, self.finish = np.full(n, np.nan), np.full(n, np.nan)
        self.rejected = np.zeros(n, dtype=bool)
        self.runs: dict[tuple[int, ...], FleetRun] = {}

    def run(self, comp: tuple[int, ...], counts: dict[int, int], commit: bool) -> bool:
        """Replay ``comp`` at ``counts``; whether every bucket then meets. ``commit`` keeps the outcome."""
        idx, run = _replay(self.rep, comp, counts)
        self.replays += 1
        first, finish = self.first.copy(), self.finish.copy()
        first[idx], finish[idx] = run.first_s, run.finish_s
        if commit:
            self.first, self.finish, self.runs[comp] = first, finish, run
            self.rejected[idx] = run.rejected
        return _check(self.rep, self.plan_buckets, first, finish, self.pct)[1]


def _smallest(search: _Search, planned: dict[int, int]) -> tuple[dict[int, int], set[int], bool | None]:
    """Fewest instances per group (bisection, others planned), then the minima together (raised until they meet)."""
    rep = search.rep
    comp_of = {g: c for c in rep.components for g in c}
    best = dict(planned)
    searched: set[int] = set()
    order = sorted(planned, key=lambda g: -planned[g] * rep.deps[g].parallel.gpus)
    for g in order:
        lo, hi = 0, planned[g]
        while hi - lo > 1 and search.replays < search.left:
            mid = (lo + hi) // 2
            if search.run(comp_of[g], {**planned, g: mid}, commit=False):
                hi = mid
            else:
                lo = mid
        if hi - lo <= 1:
            searched.add(g)
        best[g] = hi
    together: bool | None = None
    for comp in rep.components:
        if all(best[g] == planned[g] for g in comp):
            continue
        ok = search.run(comp, best, commit=False)
        while not ok and search.replays < search.left:
            g = max((g for g in comp if best[g] < planned[g]), key=lambda g: planned[g] / best[g])
            best[g] += 1
            ok = search.run(comp, best, commit=False)
        together = ok if together is None else together and ok
    return best, searched, True if together is None else together


def verify_plan(plan: Plan | dict[str, Any], scenario: Scenario | str | Path | dict | None = None, *,
                n_requests: int = 2000, seed: int = 0, search_smallest: bool = True, max_replays: int = 24,
                warmup_share: float = WARMUP_SHARE, hw: HardwareDB | None = None,
                progress: Callable[[str], None] | None = None) -> Verification:
    """Replay ``plan`` (a ``Plan`` or its ``to_dict``/JSON) with ``scenario``'s workload (default: the
    scenario file the plan names); see the module doc.

    Seeded: the same plan, scenario and arguments give the same result (bar ``elapsed_s``).
    """
    t_start = time.perf_counter()
    if isinstance(n_requests, bool) or not isinstance(n_requests, int) or not 10 <= n_requests <= MAX_REQUESTS:
        raise InputError("requests", f"a whole number of requests in 10..{MAX_REQUESTS}", n_requests)
    if isinstance(max_replays, bool) or not isinstance(max_replays, int) or max_replays < 0:
        raise InputError("max_replays", "a whole number >= 0", max_replays)
    if not 0 <= warmup_share < 0.9:
        raise InputError("warmup_share", "a share in [0, 0.9)", warmup_share)
    d = _plan_dict(plan)
    sc = _scenario_of(d, scenario)
    hw = hw or default_hardware()
    rep, clipped = _prepare(d, sc, n_requests, seed, warmup_share, hw)
    pct = float(d["slo"].get("percentile", 99.0))
    buckets = list(d["buckets"])
    search = _Search(rep, buckets, pct, max_replays)
    planned = {g: int(rep.groups[g]["instances"]) for g in range(len(rep.groups))}
    for comp in rep.components:
        if progress:
            progress(f"replaying {', '.join(label_of(rep.groups[g]) for g in comp)}")
        search.run(comp, planned, commit=True)
    search.replays = 0
    checks, meets, attainment = _check(rep, buckets, search.first, search.finish, pct)
    best: dict[int, int] | None = None
    searched: set[int] = set()
    together: bool | None = None
    notes = []
    if search_smallest and meets:
        if progress:
            progress("searching the smallest instance counts")
        best, searched, together = _smallest(search, planned)
    elif search_smallest:
        notes.append("the planned counts miss the SLO in simulation: no smaller counts searched")
    gpus = [rep.deps[g].parallel.gpus for g in range(len(rep.groups))]
    planned_gpus = sum(planned[g] * gpus[g] for g in planned)
    sufficient = sum(best[g] * gpus[g] for g in best) if best is not None and together else None
    if best is not None and not together:
        notes.append(f"the smallest counts found did not meet the SLO together within {max_replays} replays")
    unfinished = int(np.sum(np.isnan(search.finish) & ~search.rejected))
    if search.rejected.any():
        notes.append(f"{int(search.rejected.sum())} request(s) too long for their group's KV cache were not run")
    m = rep.measured
    return Verification(
        scenario=str(d.get("scenario", sc.name)), model=str(d["model"]), seed=seed, n_requests=n_requests,
        measured_requests=int(m.sum()), warmup_share=warmup_share, slo=dict(d["slo"]),
        attainment=attainment, meets=meets, buckets=tuple(checks),
        groups=tuple(_group_checks(rep, search, planned, best, searched)), planned_gpus=planned_gpus,
        sufficient_gpus=sufficient, overprovision_ratio=planned_gpus / sufficient if sufficient else None,
        smallest_meets=together, replays=search.replays, clipped=clipped, rejected=int(search.rejected.sum()),
        unfinished=unfinished, elapsed_s=time.perf_counter() - t_start, rules=RULES, notes=tuple(notes))


def _group_checks(rep: _Replay, search: _Search, planned: dict[int, int], best: dict[int, int] | None,
                  searched: set[int]) -> list[GroupCheck]:
    out = []
    for c in rep.components:
        run = search.runs[c]
        for k, g in enumerate(c):
            grp = rep.groups[g]
            role = grp["role"]
            mine = (rep.back == g) if role == "decode" else (rep.front == g)
            done = mine & ~np.isnan(search.first if role == "prefill" else search.finish)
            tokens = rep.isl[done].sum() if role == "prefill" else rep.osl[done].sum()
            dur = run.duration_s
            out.append(GroupCheck(
                label=label_of(grp), role=role, accelerator=str(grp["accelerator"]), instances=planned[g],
                gpus_per_instance=rep.deps[g].parallel.gpus, requests=int(mine.sum()),
                requests_per_s=float(done.sum() / dur) if dur > 0 else math.nan,
                tokens_per_s=float(tokens / dur) if dur > 0 else math.nan,
                utilisation=float(run.busy_s[k] / (planned[g] * dur)) if dur > 0 else math.nan,
                planned_utilisation=float(grp.get("utilisation", math.nan)), preemptions=int(run.preemptions[k]),
                smallest_instances=best[g] if best is not None else None, searched=g in searched))
    return out
