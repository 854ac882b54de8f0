"""Fill the capacity table: every candidate instance type and its capacity per bucket.

A candidate is one accelerator type × (TP, PP, EP, data-parallel attention) × role (colocated,
prefill-only, decode-only) that fits in memory, with TP inside one scale-up domain or spanning whole
domains (TP/EP/attention-DP across nodes: their collectives then cross the scale-out network). Its capacity
for a bucket is the highest request rate one instance sustains with the bucket's TTFT and TPOT at
the SLO percentile (``goodput``), times the target utilisation. For disaggregated roles the KV
cache crosses the scale-out link: its transfer time counts against TTFT, and the link bandwidth
caps the rate (``rate · I · kv_bytes ≤ link``).

Pruning keeps the set small without losing optima that matter: PP > 1 only when the model does
not fit at PP = 1 with the largest TP; EP only at 1 or the full TP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from planner.capacity import LOADS, BucketInfo, CandidateInfo, CapacityTable, Rejection
from planner.deployment import Deployment, engine_runs_on
from planner.dtypes import Precision
from planner.errors import PlannerError
from planner.hardware import Accelerator
from planner.models import ModelArch
from planner.parallel import Parallel, check_parallel
from planner.perf.memory import memory_plan
from planner.profile import EngineSettings, Profile
from planner.serving.instance import ROLES, RequestSize
from planner.serving.roles import instance_model
from planner.workload import SLO, Bucket

POOL_TIERS: tuple[int, ...] = (1, 4, 16, 64)
"""Pool sizes (instances behind one balancer) for which a fleet tier is evaluated."""

SMALL_TOKEN_BUDGET = 2048
"""The second per-step token budget colocated and prefill-only candidates are tried with when the scenario leaves
``engine_settings.token_budget`` unset: vLLM's own default for online serving on smaller GPUs
(``--max-num-batched-tokens`` 2048; 8192 on >= 70 GiB parts) and a common SGLang
``--chunked-prefill-size``. A smaller chunk puts less prefill into each decode step, so the TPOT of
a colocated instance on a slow-compute GPU stays under the SLO while it takes prompts (a 70B step
with 8192 prompt tokens takes ~0.5 s on eight A100s); the ILP keeps whichever budget is cheaper, and
the plan emits it as the engine's flag."""


def _budget_variants(dep: Deployment, settings: EngineSettings, roles: tuple[str, ...]
                     ) -> list[tuple[Deployment, tuple[str, ...], str]]:
    """(deployment, roles, key suffix): the profile's budget for every role, and for the roles that chunk
    prompts (colocated, prefill) the small budget too, unless the scenario fixed the budget or the
    profile's is already small."""
    out = [(dep, roles, "")]
    chunked = tuple(r for r in roles if r in ("colocated", "prefill"))
    if chunked and settings.token_budget is None and dep.eff.token_budget > SMALL_TOKEN_BUDGET:
        small = replace(dep, settings=replace(settings, token_budget=SMALL_TOKEN_BUDGET))
        out.append((small, chunked, f"|tb{SMALL_TOKEN_BUDGET}"))
    return out


def bucket_size(b: Bucket) -> RequestSize:
    """Representative request of a bucket: its mean lengths, its input length at the SLO percentile
    (``Bucket.isl_tail``, computed by ``bucketize``) for the TTFT tail, and the squared CV of its
    input lengths for queueing. ``estimate`` uses the same function on a one-bucket workload."""
    tail = b.isl_tail if b.isl_tail else b.isl_p90
    return RequestSize(isl=b.isl_mean, osl=max(b.osl_mean, 1.0), isl_tail=max(tail, b.isl_mean), cs2=b.isl_cs2,
                       decode_steps=b.decode_steps_hmean or None)


def parallel_options(model: ModelArch, acc: Accelerator, tp_options: tuple[int, ...],
                     pp_options: tuple[int, ...]) -> list[Parallel]:
    """TP/PP/EP combinations the model can be split into on ``acc``."""
    out = []
    for tp in sorted(set(tp_options)):
        if tp > acc.scaleup_domain and tp % acc.scaleup_domain:
            continue  # a TP group spans whole scale-up domains or fits in one
        for pp in sorted(set(pp_options)):
            eps = (1, tp) if model.is_moe and tp > 1 else (1,)
            for ep in sorted(set(eps)):
                for dpa in ((False, True) if model.is_moe and tp > 1 and ep == tp else (False,)):
                    par = Parallel(tp=tp, pp=pp, ep=ep, dp_attn=dpa)
                    try:
                        check_parallel(par, model.n_heads, model.n_kv_heads, model.n_layers, model.n_experts)
                    except PlannerError:
                        continue
                    out.append(par)
    return out


def _fitting(model: ModelArch, acc: Accelerator, prec: Precision, profile: Profile, settings: EngineSettings,
             options: list[Parallel], need_tokens: int) -> tuple[list[Parallel], str]:
    """The splits that fit (PP only where no PP = 1 split fits), or why none does."""
    eff = profile.for_accelerator(acc.id, acc.family).with_settings(settings)
    fitting: list[Parallel] = []
    best = None
    for par in options:
        mp = memory_plan(model, acc, par, prec, eff, min_kv_tokens=need_tokens, engine=profile.engine)
        if best is None or mp.max_kv_tokens > best.max_kv_tokens:
            best = mp
        if mp.fits:
            fitting.append(par)
    pp1 = [p for p in fitting if p.pp == 1]
    if pp1:
        return pp1, ""
    if fitting:
        top = max(p.tp for p in fitting)
        return [p for p in fitting if p.tp == top], ""
    return [], best.reason if best else ""


def build_table(model: ModelArch, accs: list[Accelerator], prec: Precision, profile: Profile, buckets: list[Bucket],
                slo: SLO, arrival_cv: float, target_utilisation: float, tp_options: tuple[int, ...],
                pp_options: tuple[int, ...], roles: tuple[str, ...] = ROLES, settings: EngineSettings | None = None,
                pools: tuple[int, ...] = POOL_TIERS, progress: Callable[[], None] | None = None) -> CapacityTable:
    """Every fitting candidate with its per-bucket capacity and latencies, and a reason for each accelerator
    that has none. Candidates that meet the SLO for no bucket stay in the table (capacity 0): their
    idle latencies tell an infeasible plan what the SLO must allow.

    Fleet tiers: a group of N instances behind a least-outstanding-requests balancer queues as one
    G/G/N system, so its per-instance capacity under a TTFT limit grows with N. Each instance type
    gets one row per pool size in ``pools`` (the row's ``pool``: the plan must buy at least that many);
    a tier is kept only where it raises some capacity over the tier below (TPOT- or memory-bound types
    keep one row). With one pool size, every row queues as that many instances whatever the count
    (the scenario's explicit ``queueing.pool``)."""
    settings = settings or EngineSettings()
    need = int(max(b.isl_hi for b in buckets) + max(b.osl_hi for b in buckets))
    kv_tok = model.kv_bytes_per_token(prec.kv_bytes)
    sizes = [bucket_size(b) for b in buckets]
    infos, caps, binds, ttft, tpot, ttft0, tpot0 = [], [], [], [], [], [], []
    rejected: list[Rejection] = []
    for acc in accs:
        try:
            prec.gemm_dtype(set(acc.peak_flops))
        except PlannerError:
            rejected.append(Rejection(acc.id, f"cannot run {prec.weights} weights"))
            continue
        if not engine_runs_on(profile.engine, acc.vendor):
            rejected.append(Rejection(acc.id, f"engine {profile.engine} does not run on {acc.vendor} accelerators"))
            continue
        options = parallel_options(model, acc, tp_options, pp_options)
        fitting, why = _fitting(model, acc, prec, profile, settings, options, need)
        if not fitting:
            why = why or (f"no TP in {sorted(set(tp_options))} x PP in {sorted(set(pp_options))} splits the model's "
                          f"{model.n_heads} heads / {model.n_layers} layers within the {acc.scaleup_domain}-GPU "
                          f"scale-up domain")
            rejected.append(Rejection(acc.id, f"does not fit: {why}"))
            continue
        useful = 0
        for par in fitting:
            for dep, dep_roles, suffix in _budget_variants(Deployment(model, acc, par, prec, profile, settings),
                                                           settings, roles):
                useful += _add_rows(dep, dep_roles, suffix, sizes, slo, arrival_cv, target_utilisation, pools,
                                    kv_tok, infos, (caps, binds, ttft, tpot, ttft0, tpot0), progress)
        if not useful:
            rejected.append(Rejection(acc.id, "fits, but no parallelism meets the SLO for any request size"))
    infos_b = tuple(BucketInfo(i, b.isl_lo, b.isl_hi, b.osl_lo, b.osl_hi, b.isl_mean, b.osl_mean, s.tail_isl,
                               b.share) for i, (b, s) in enumerate(zip(buckets, sizes)))
    nb, nl = len(buckets), len(LOADS)
    return CapacityTable(tuple(infos), infos_b, np.array(caps).reshape(len(infos), nb), tuple(binds),
                         np.array(ttft).reshape(len(infos), nb, nl), np.array(tpot).reshape(len(infos), nb, nl),
                         np.array(ttft0).reshape(len(infos), nb), np.array(tpot0).reshape(len(infos), nb),
                         slo.percentile, target_utilisation, tuple(rejected), tuple(pools), LOADS)


def _add_rows(dep: Deployment, roles: tuple[str, ...], suffix: str, sizes: list[RequestSize], slo: SLO,
              arrival_cv: float, target_utilisation: float, pools: tuple[int, ...], kv_tok: float,
              infos: list[CandidateInfo], columns: tuple[list, ...],
              progress: Callable[[], None] | None = None) -> int:
    """Append one deployment's rows (a row per role and kept pool tier); returns how many meet the
    SLO for some bucket."""
    acc, par, profile, eff = dep.accelerator, dep.parallel, dep.profile, dep.eff
    memo: dict = {}  # step times shared by every role and bucket of this deployment
    link = acc.scaleout_bw_bytes_per_s * par.gpus
    kv_tokens = memory_plan(dep.model, acc, par, dep.precision, eff, min_kv_tokens=1,
                            engine=profile.engine).max_kv_tokens
    useful = 0
    for role in roles:
        base = f"{acc.id}|{par.tp}|{par.pp}|{par.ep}|{'dpa' if par.dp_attn else 'tpa'}|{role}{suffix}"
        prev = None
        tiers = pools if role != "decode" else pools[:1]
        for pool in tiers:
            row = _candidate_row(dep, role, sizes, slo, arrival_cv, target_utilisation, pool, memo, kv_tok, link)
            if prev is not None and not np.any(np.asarray(row[0]) > np.asarray(prev) * (1 + 1e-6)):
                continue  # this tier adds no capacity: the TTFT queue does not bind
            prev = row[0]
            min_count = pool if len(pools) > 1 else 1
            infos.append(CandidateInfo(
                key=base if min_count == 1 else f"{base}|p{pool}", accelerator=acc.id, vendor=acc.vendor,
                family=acc.family, tp=par.tp, pp=par.pp, ep=par.ep, dp_attn=par.dp_attn, role=role,
                gpus=par.gpus, price_per_hour=acc.price_per_hour * par.gpus, watts=acc.tdp_w * par.gpus,
                engine=profile.engine, precision=dep.precision.weights, kv_dtype=dep.precision.kv,
                token_budget=int(eff.token_budget), max_seqs=int(eff.max_seqs), memory_fraction=eff.memory_util,
                max_kv_tokens=int(kv_tokens), pool=min_count, base=base))
            for col, val in zip(columns, row):
                col.append(val)
            useful += max(row[0]) > 0
        if progress is not None:
            progress()
    return useful


def _candidate_row(dep: Deployment, role: str, sizes: list[RequestSize], slo: SLO, arrival_cv: float,
                   target_utilisation: float, pool: int, memo: dict, kv_tok: float, link: float):
    """(capacities, binds, TTFT at LOADS, TPOT at LOADS, idle TTFT, idle TPOT) of one candidate, per bucket."""
    caps, binds, ttft, tpot, ttft0, tpot0 = [], [], [], [], [], []
    for size in sizes:
        inst = instance_model(dep, role, size, arrival_cv=arrival_cv, _cache=memo, pool=pool)
        extra = size.tail_isl * kv_tok / link if role == "prefill" else 0.0
        curve = inst.slo_curve(slo.percentile, extra_ttft_s=extra)
        if curve is None:
            rps, bind = 0.0, "memory"
        else:
            rps, bind = curve.goodput(slo.ttft_s, slo.tpot_s, inst.concurrency_bound if role != "prefill"
                                      else "compute")
        if role in ("prefill", "decode") and rps > 0:
            link_rps = link / (size.isl * kv_tok)
            if link_rps < rps:
                rps, bind = link_rps, "kv_link"
        cap = rps * target_utilisation
        if curve is not None and cap > 0:
            t_q, p_q = curve.at(np.asarray(LOADS) * cap)
        else:
            t_q = p_q = np.full(len(LOADS), np.inf)
        caps.append(cap)
        binds.append(bind)
        ttft.append(t_q)
        tpot.append(p_q)
        fits = inst.fits and inst.serviceable
        ttft0.append(float(inst.prompt_step_s(0.0, size.tail_isl)) + dep.eff.ttft_overhead_s + extra
                     if fits and role != "decode" else np.inf)
        tpot0.append(float(inst.step_s(1.0)) if fits and role != "prefill" else np.inf)
    return caps, tuple(binds), ttft, tpot, ttft0, tpot0
