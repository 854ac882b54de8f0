"""``plan``: the cheapest deployment that meets the SLO at the rate, its alternatives, and why.

Flow: scenario → buckets → candidates (``candidates.py``) → ILP (``ilp.py``) → a ``Plan``
with groups, costs, predicted latency per bucket, alternatives (best single accelerator,
colocated-only, disaggregated-only, and per accelerator not chosen: why), and, when nothing
is feasible, which constraint blocks it and the smallest change that would not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from planner.api import deployment
from planner.dtypes import Precision
from planner.errors import InfeasibleError, PlannerError
from planner.hardware import Accelerator, HardwareDB, default_hardware
from planner.models import get_model
from planner.optimise.candidates import Candidate, Rejection, build_candidates
from planner.optimise.ilp import Solution, solve
from planner.profile import load_profile
from planner.scenario import Scenario
from planner.workload import Buckets, bucketize


@dataclass(frozen=True)
class Group:
    """Instances of one candidate in the plan."""

    gpu: str
    role: str
    tp: int
    pp: int
    ep: int
    instances: int
    gpus: int
    cost_per_hour: float
    watts: float
    dp_attn: bool
    utilisation: float
    headroom: float
    bucket_shares: dict[int, float]


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
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["groups"] = [asdict(g) | {"bucket_shares": {str(k): v for k, v in g.bucket_shares.items()}}
                       for g in self.groups]
        d["notes"] = list(self.notes)
        return d

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in asdict(g).items() if k != "bucket_shares"} for g in self.groups])

    def buckets_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(b) for b in self.buckets])

    def alternatives_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(a) for a in self.alternatives])

    def assumptions(self) -> pd.DataFrame:
        rows = [("model", self.model), ("rate_rps", self.rate_rps), ("objective", self.objective)]
        rows += [(f"slo.{k}", v) for k, v in self.slo.items()]
        rows += [("solve_s", self.solve_s), ("gap_bound", self.gap), ("candidates", self.candidates)]
        rows += [("note", n) for n in self.notes]
        return pd.DataFrame(rows, columns=["item", "value"])


def _by_id(mapping: dict[str, Any], hw: HardwareDB, field: str) -> dict[str, Any]:
    """Re-key a per-accelerator mapping by resolved id; two names for one accelerator is an error."""
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, value in mapping.items():
        acc_id = hw.get(name).id  # unknown names fail with a did-you-mean
        if acc_id in out:
            raise PlannerError(f"{field}: {names[acc_id]!r} and {name!r} both name {acc_id}; give it once")
        out[acc_id], names[acc_id] = value, name
    return out


def _accelerators(sc: Scenario, hw: HardwareDB) -> list[Accelerator]:
    """Candidate accelerators, each once (aliases of one accelerator collapse), with price overrides."""
    prices = _by_id(sc.prices, hw, "prices")
    _by_id(sc.availability, hw, "availability")
    accs: dict[str, Accelerator] = {}
    for n in sc.accelerators or hw.ids():
        a = hw.get(n)
        accs.setdefault(a.id, a.with_price(prices[a.id], "scenario override") if a.id in prices else a)
    return list(accs.values())


def _availability(sc: Scenario, hw: HardwareDB) -> dict[str, int]:
    return _by_id(sc.availability, hw, "availability")


def _output_rate(buckets: Buckets) -> float:
    return sum(b.rate_rps * b.osl_mean for b in buckets)


def _groups(cands: dict[str, Candidate], sol: Solution, nb: int, target_util: float) -> list[Group]:
    """Groups of the plan; ``utilisation`` is the share of the SLO-meeting capacity (goodput) the
    planned load uses, so headroom = 1 − utilisation."""
    out = []
    for key, count in sorted(sol.counts.items(), key=lambda kv: -cands[kv[0]].price_per_hour * kv[1]):
        c = cands[key]
        shares = {b: sol.shares[(key, b)] for b in range(nb) if (key, b) in sol.shares}
        util = sol.load.get(key, 0.0) / count * target_util if count else 0.0
        out.append(Group(gpu=c.acc.id, role=c.role, tp=c.par.tp, pp=c.par.pp, ep=c.par.ep, dp_attn=c.par.dp_attn,
                         instances=count,
                         gpus=count * c.gpus, cost_per_hour=count * c.price_per_hour, watts=count * c.watts,
                         utilisation=util, headroom=1.0 - util, bucket_shares=shares))
    return out


def _bucket_reports(cands: dict[str, Candidate], sol: Solution, buckets: Buckets, percentile: float,
                    target_util: float) -> list[BucketReport]:
    """Latency per bucket at each serving instance's planned load (linear-load approximation):
    an instance at utilisation u of its capacity runs each bucket at u·goodput."""
    key = f"p{percentile:g}"
    reports = []
    for b, bucket in enumerate(buckets):
        ttft, tpot, colo, by = 0.0, 0.0, 0.0, []
        for (ck, bb), share in sol.shares.items():
            if bb != b:
                continue
            c = cands[ck]
            n = sol.counts.get(ck, 0)
            util = sol.load.get(ck, 0.0) / n if n else 0.0
            inst = c.models[b]
            lat = inst.latency(max(util * c.capacity_rps[b], 1e-9), (percentile,))
            if c.role == "colocated":
                colo += share
                ttft = max(ttft, lat.ttft_s[key])
                tpot = max(tpot, lat.tpot_s[key])
            elif c.role == "prefill":
                kv = inst.dep.model.kv_bytes_per_token(inst.dep.prec.kv_bytes)
                xfer = inst.size.tail_isl * kv / (c.acc.scaleout_bw_bytes_per_s * c.gpus)  # as in capacity
                ttft = max(ttft, lat.ttft_s[key] + xfer)
            else:
                tpot = max(tpot, lat.tpot_s[key])
            by.append(f"{c.label} {100 * share:.0f}%")
        reports.append(BucketReport(b, f"{bucket.isl_lo}-{bucket.isl_hi}", f"{bucket.osl_lo}-{bucket.osl_hi}",
                                    float(bucket.rate_rps), float(colo), float(ttft), float(tpot), "; ".join(by)))
    return reports


def _binding(sc: Scenario, cands: dict[str, Candidate], sol: Solution, avail: dict[str, int]) -> list[str]:
    out = []
    for acc_id, limit in avail.items():
        used = sum(cands[k].gpus * n for k, n in sol.counts.items() if cands[k].acc.id == acc_id)
        if used >= limit > 0:
            out.append(f"availability of {acc_id} ({limit} GPUs)")
    if sc.budget_per_hour is not None:
        cost = sum(cands[k].price_per_hour * n for k, n in sol.counts.items())
        if cost >= 0.98 * sc.budget_per_hour:
            out.append(f"budget (${sc.budget_per_hour:,.2f}/h)")
    reasons: dict[str, int] = {}
    for k, b in sol.shares:
        reasons[cands[k].binds[b]] = reasons.get(cands[k].binds[b], 0) + 1
    labels = {"ttft": "TTFT SLO", "tpot": "TPOT SLO", "kv_capacity": "KV-cache capacity", "max_seqs": "sequence cap",
              "token_budget": "token budget", "capacity": "instance throughput", "compute": "prefill compute",
              "kv_link": "KV-transfer link"}
    for r, _ in sorted(reasons.items(), key=lambda kv: -kv[1]):
        out.append(f"per-instance limit: {labels.get(r, r)}")
    return out


@dataclass(frozen=True)
class Prepared:
    """A scenario turned into buckets and candidates: everything the ILP needs. Capacities do not
    depend on the rate, so one ``Prepared`` serves a whole sweep of rates."""

    scenario: Scenario
    model_id: str
    buckets: Buckets
    rates: tuple[float, ...]
    candidates: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...]
    accelerators: tuple[str, ...]
    solve_kw: dict[str, Any]
    notes: tuple[str, ...] = ()


def _coerce(sc: Scenario | str | dict) -> Scenario:
    if isinstance(sc, dict):
        from planner.scenario import parse_scenario

        return parse_scenario(sc)
    if not isinstance(sc, Scenario):
        from planner.scenario import load_scenario

        return load_scenario(sc)
    return sc


def prepare(sc: Scenario | str | dict, hw: HardwareDB | None = None, progress=None) -> Prepared:
    """Buckets, candidates and their capacities for a scenario."""
    sc = _coerce(sc)
    hw = hw or default_hardware()
    model = get_model(sc.model)
    profile = load_profile(sc.engine)
    first = _accelerators(sc, hw)
    dep = deployment(model, first[0], precision=sc.precision, kv_dtype=sc.kv_dtype, engine=profile, hardware_db=hw)
    prec: Precision = dep.prec
    buckets, notes = _fit_context(bucketize(sc.workload, sc.n_isl, sc.n_osl), model.max_context)
    roles = {"auto": ("colocated", "prefill", "decode"), "off": ("colocated",), "only": ("prefill", "decode")}
    cand_list, rejected = build_candidates(model, first, prec, profile, list(buckets), sc.slo, sc.workload.arrival_cv,
                                           sc.target_utilisation, sc.tp_options, sc.pp_options,
                                           roles[sc.disaggregation], progress=progress, pool=sc.queue_pool)
    kw = dict(objective=sc.objective, availability=_availability(sc, hw), budget=sc.budget_per_hour,
              spare=sc.spare_instances, time_limit_s=sc.time_limit_s, gap_rel=sc.gap_rel)
    return Prepared(sc, model.id, buckets, tuple(b.rate_rps for b in buckets), tuple(cand_list), tuple(rejected),
                    tuple(a.id for a in first), kw, tuple(notes))


def _fit_context(buckets: Buckets, max_context: int) -> tuple[Buckets, list[str]]:
    """Requests longer than the model's context cannot be served as they are: plan them as truncated
    to the context (prompt cut to leave room for the answer) and say how many there are."""
    if not max_context:
        return buckets, []
    out, over = [], 0.0
    for b in buckets:
        if b.isl_hi + b.osl_hi <= max_context:
            out.append(b)
            continue
        over += b.share
        room = max(max_context - int(b.osl_mean), 1)
        out.append(replace(b, isl_hi=min(b.isl_hi, room), isl_lo=min(b.isl_lo, room),
                           isl_mean=min(b.isl_mean, room), isl_p90=min(b.isl_p90, room)))
    if not over:
        return buckets, []
    note = (f"{100 * over:.1f}% of requests fall in buckets reaching past the model's {max_context:,}-token context; "
            f"they are planned as truncated to it")
    return replace(buckets, buckets=tuple(out)), [note]


def cost_at(prep: Prepared, rate_scale: float = 1.0, allow=None) -> float | None:
    """$/hour of the optimum at ``rate_scale`` × the scenario's rate (None when infeasible)."""
    sol = solve(list(prep.candidates), [r * rate_scale for r in prep.rates], allow=allow, **prep.solve_kw)
    if not sol.ok:
        return None
    by_key = {c.key: c for c in prep.candidates}
    return sum(by_key[k].price_per_hour * n for k, n in sol.counts.items())


def plan(sc: Scenario | str | dict, hw: HardwareDB | None = None, progress=None, alternatives: bool = True,
         prepared: Prepared | None = None) -> Plan:
    """Solve a scenario (a ``Scenario``, a path to a scenario file, or a dict of scenario fields);
    raises InfeasibleError with the reason and the smallest fix when nothing works."""
    prep = prepared or prepare(sc, hw, progress)
    sc = prep.scenario
    buckets = prep.buckets
    rates = list(prep.rates)
    cand_list, rejected = list(prep.candidates), list(prep.rejected)
    cands = {c.key: c for c in cand_list}
    avail = prep.solve_kw["availability"]
    kw = prep.solve_kw
    model_id = prep.model_id
    if not any(max(c.capacity_rps) > 0 for c in cand_list):
        raise InfeasibleError(_no_candidates(sc, rejected, cand_list, buckets))
    floor = 0.0  # fewest instances any plan needs: each bucket on its highest-capacity candidate
    for b, r in enumerate(rates):
        top = max((c.capacity_rps[b] for c in cand_list if c.role != "decode"), default=0.0)
        if r > 0 and top > 0:
            floor += r / top
    if floor > 1e6:
        best = sum(rates) / floor * 1e6
        raise InfeasibleError(f"rate: {sc.workload.rate_rps:.3g} req/s would need more than a million instances; "
                              f"plan for at most about {best:.3g} req/s, or split the traffic across scenarios")
    # The recommendation and the alternatives are independent MILPs: solve them two at a time
    # (the in-process HiGHS solver releases the GIL for most of its run).
    from concurrent.futures import ThreadPoolExecutor

    jobs = _alternative_jobs(cand_list) if alternatives else []
    with ThreadPoolExecutor(max_workers=2) as pool:
        main_f = pool.submit(solve, cand_list, rates, **kw)
        alt_fs = [(name, pool.submit(solve, cand_list, rates, allow=allow, **kw)) for name, allow in jobs]
        sol = main_f.result()
        if not sol.ok:
            for _, f in alt_fs:
                f.cancel()
        alt_sols = [(name, f.result()) for name, f in alt_fs if not f.cancelled()] if sol.ok else []
    if not sol.ok:
        raise InfeasibleError(_explain(sc, cand_list, rates, kw, buckets))
    if sol.status != "optimal":  # bound the gap of a time-limited solve by the LP relaxation
        relaxed = solve(cand_list, rates, **{**kw, "spare": 0}, relax=True)
        sol = Solution(sol.status, sol.objective, sol.counts, sol.shares, sol.load,
                       relaxed.objective if relaxed.ok else None, sol.solve_s + relaxed.solve_s, sol.time_limited)
    groups = _groups(cands, sol, len(rates), sc.target_utilisation)
    cost = sum(g.cost_per_hour for g in groups)
    out_tps = _output_rate(buckets)
    total_tps = sum(b.rate_rps * (b.isl_mean + b.osl_mean) for b in buckets)
    reports = _bucket_reports(cands, sol, buckets, sc.slo.percentile, sc.target_utilisation)
    alts = _alternatives(cand_list, alt_sols, cost, rejected, sol) if alternatives else []
    notes = list(prep.notes)
    if sol.status == "feasible":
        notes.append(f"solver stopped at its {sc.time_limit_s:g} s limit: best plan found, not proven optimal")
    if sc.spare_instances:
        notes.append(f"each group keeps {sc.spare_instances} spare instance(s) (N+{sc.spare_instances})")
    binding = _binding(sc, cands, sol, avail)
    if sc.queue_pool == 1 and "per-instance limit: TTFT SLO" in binding:
        total = sum(g.instances for g in groups)
        notes.append(f"TTFT binds and the queueing assumes each instance queues alone (queueing.pool: 1); with "
                     f"{total} instances behind a least-outstanding balancer, set queueing.pool to about that "
                     f"for a less conservative plan")
    worst_ttft = max((r.ttft_s for r in reports), default=0.0)
    worst_tpot = max((r.tpot_s for r in reports), default=0.0)
    return Plan(
        scenario=sc.name, model=model_id, status=sol.status, objective=sc.objective, objective_value=sol.objective,
        cost_per_hour=cost, cost_per_million_output_tokens=cost / (out_tps * 3600) * 1e6 if out_tps else math.inf,
        cost_per_million_total_tokens=cost / (total_tps * 3600) * 1e6 if total_tps else math.inf,
        total_gpus=sum(g.gpus for g in groups), watts=sum(g.watts for g in groups), groups=tuple(groups),
        buckets=tuple(reports),
        predicted={"ttft_s": worst_ttft, "tpot_s": worst_tpot, "percentile": sc.slo.percentile},
        slo=asdict(sc.slo), rate_rps=sc.workload.rate_rps, output_tokens_per_s=out_tps,
        binding=tuple(binding), alternatives=tuple(alts), rejected=tuple(rejected),
        solve_s=sol.solve_s, gap=sc.gap_rel if sol.status == "optimal" else sol.gap,
        candidates=sum(max(c.capacity_rps) > 0 for c in cand_list),
        notes=tuple(notes),
    )


def _alternative_jobs(cands: list[Candidate]) -> list[tuple[str, Any]]:
    """Restrictions to solve beside the recommendation: roles, then each accelerator alone."""
    acc_list = sorted({c.acc.id for c in cands if max(c.capacity_rps) > 0})
    jobs: list[tuple[str, Any]] = [("colocated only", lambda c: c.role == "colocated"),
                                   ("disaggregated only", lambda c: c.role != "colocated")]
    return jobs + [(f"only {a}", lambda c, a=a: c.acc.id == a) for a in acc_list]


def _alternatives(cands: list[Candidate], solved: list[tuple[str, Solution]], best: float,
                  rejected: list[Rejection], main: Solution) -> list[Alternative]:
    by_key = {c.key: c for c in cands}

    def describe(name: str, s: Solution) -> Alternative:
        if not s.ok:
            return Alternative(name, "infeasible", None, None, None, "no plan meets the SLO within the limits")
        cost = sum(by_key[k].price_per_hour * n for k, n in s.counts.items())
        gpus = sum(by_key[k].gpus * n for k, n in s.counts.items())
        delta = 100.0 * (cost - best) / best if best else 0.0
        return Alternative(name, s.status, cost, delta, gpus, f"{delta:+.1f}% vs the recommendation")

    results = [describe(name, s) for name, s in solved]
    out, singles = results[:2], results[2:]
    used = {by_key[k].acc.id for k in main.counts}
    feasible = [a for a in singles if a.cost_per_hour is not None]
    if feasible:
        b = min(feasible, key=lambda a: a.cost_per_hour)
        out.insert(0, Alternative("best single accelerator: " + b.name.removeprefix("only "), b.status,
                                  b.cost_per_hour, b.delta_pct, b.total_gpus, b.detail))
    for a in singles:
        acc_id = a.name.removeprefix("only ")
        if acc_id in used:
            continue
        detail = a.detail if a.cost_per_hour is not None else "cannot meet the SLO on its own within the limits"
        out.append(Alternative(f"not chosen: {acc_id}", a.status, a.cost_per_hour, a.delta_pct, a.total_gpus,
                               detail))
    for r in rejected:
        out.append(Alternative(f"not chosen: {r.acc_id}", "excluded", None, None, None, r.reason))
    return out


def _no_candidates(sc: Scenario, rejected: list[Rejection], cands: list[Candidate], buckets: Buckets) -> str:
    if cands:
        return _explain(sc, cands, [b.rate_rps for b in buckets], {}, buckets)
    fits = [r for r in rejected if not r.reason.startswith("does not fit")]
    if not fits:
        return (f"{sc.model} does not fit on any candidate accelerator at TP up to the scale-up domain "
                f"(e.g. {rejected[0].acc_id}: {rejected[0].reason}); add larger accelerators, allow more TP/PP, "
                f"or use a smaller weight/KV dtype")
    return (f"no candidate meets the SLO (TTFT {sc.slo.ttft_s} s, TPOT {sc.slo.tpot_s} s at "
            f"p{sc.slo.percentile:g}) for any request size; loosen the SLO or add faster accelerators")


def _explain(sc: Scenario, cands: list[Candidate], rates: list[float], kw: dict, buckets: Buckets) -> str:
    """Which constraint blocks the plan, and the smallest change that lifts it."""
    uncovered = [b for b in range(len(rates)) if rates[b] > 0 and
                 not any(c.capacity_rps[b] > 0 for c in cands if c.role == "colocated") and
                 not (any(c.capacity_rps[b] > 0 for c in cands if c.role == "prefill") and
                      any(c.capacity_rps[b] > 0 for c in cands if c.role == "decode"))]
    if uncovered:
        b = buckets.buckets[uncovered[0]]
        need_ttft = min((m.prompt_step_s(0.0, m.size.tail_isl) + m.dep.eff.ttft_overhead_s
                         for c in cands for m in (c.models[uncovered[0]],) if c.role != "decode"), default=math.inf)
        need_tpot = min((m.step_s(1.0) for c in cands for m in (c.models[uncovered[0]],) if c.role != "prefill"),
                        default=math.inf)
        return (f"slo: no candidate serves requests of {b.isl_lo}-{b.isl_hi} input / {b.osl_lo}-{b.osl_hi} output "
                f"tokens within TTFT {sc.slo.ttft_s} s and TPOT {sc.slo.tpot_s} s at p{sc.slo.percentile:g}; "
                f"the fastest candidate needs TTFT >= {need_ttft:.3g} s and TPOT >= {need_tpot:.3g} s even idle: "
                f"loosen the SLO to at least that, or add faster accelerators")
    if kw.get("availability"):
        free = solve(cands, rates, **{**kw, "availability": None, "budget": kw.get("budget")})
        if free.ok:
            need: dict[str, int] = {}
            for k, n in free.counts.items():
                c = next(x for x in cands if x.key == k)
                need[c.acc.id] = need.get(c.acc.id, 0) + n * c.gpus
            short = [f"{g} GPUs of {a} (have {kw['availability'].get(a, 'unlimited')})" for a, g in need.items()
                     if a in kw["availability"] and g > kw["availability"][a]]
            rate = _max_rate(cands, rates, kw)
            lower = f"lower the rate to at most {rate:.3g} req/s" if rate > 0 else "no rate fits these limits"
            return (f"availability: the cheapest plan needs {', '.join(short) or 'more GPUs than available'}; "
                    f"raise the availability to that, or {lower}")
    if kw.get("budget") is not None:
        free = solve(cands, rates, **{**kw, "budget": None})
        if free.ok:
            cost = sum(next(c for c in cands if c.key == k).price_per_hour * n for k, n in free.counts.items())
            rate = _max_rate(cands, rates, kw)
            lower = f"lower the rate to at most {rate:.3g} req/s" if rate > 0 else "no rate fits this budget"
            return (f"budget: the cheapest plan costs ${cost:,.2f}/h, above the ${kw['budget']:,.2f}/h budget; "
                    f"raise the budget to ${cost:,.2f}/h, or {lower}")
    return "no plan satisfies the constraints; relax availability, budget or the SLO"


def _max_rate(cands: list[Candidate], rates: list[float], kw: dict) -> float:
    """Largest scale of the workload's rate that the limits allow (bisection over ILP solves)."""
    total = sum(rates)
    lo, hi = 0.0, 1.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if solve(cands, [r * mid for r in rates], **kw).ok:
            lo = mid
        else:
            hi = mid
    return lo * total
