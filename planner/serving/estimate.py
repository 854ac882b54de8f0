"""``estimate``: throughput and latency of one instance for a workload, at a rate, a
concurrency, or the offline maximum.

Modes:
- offline (neither rate nor concurrency): every request queued at once, as ``trtllm-bench``
  or vLLM's throughput benchmark; concurrency rises to its cap (KV, sequence cap, token
  budget) and throughput is ``C/t_step(C)`` of the colocated steady state.
- concurrency ``N`` (closed loop, like benchmark clients): an idle-start wave, then client groups
  that keep their offsets (``planner.serving.closed_loop``); TPOT is the colocated step at ``N``
  and the rate follows from Little's law, ``N / (TTFT + (O−1)·TPOT)``.
- rate λ (open loop, arrival CV from the workload): the operating point of Little's law and
  queueing for TTFT tails (``planner.serving.roles``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner.deployment import Deployment, make_deployment
from planner.errors import InputError, PlannerError
from planner.perf.shape import decode_shape, prefill_shape
from planner.perf.step import step_time
from planner.serving.closed_loop import closed_loop_ttft_s
from planner.serving.instance import Instance, RequestSize
from planner.serving.roles import Prefill, instance_model
from planner.serving.table import bucket_size
from planner.workload import SLO, Workload, bucketize, read_trace


@dataclass(frozen=True)
class Estimate:
    """What one instance does for a workload; SI units, ``to_dict`` for JSON."""

    model: str
    accelerator: str
    gpus: int
    parallel: str
    engine: str
    role: str
    mode: str
    isl: float
    osl: float
    concurrency: float
    requests_per_s: float
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    total_tokens_per_s: float
    ttft_s: dict[str, float]
    tpot_s: dict[str, float]
    bound: str
    memory: dict[str, Any]
    rate_rps: float | None = None
    utilisation: float | None = None
    max_rps: float | None = None
    max_goodput_rps: float | None = None
    slo: dict[str, Any] | None = None
    ttft_parts_s: dict[str, float] = field(default_factory=dict)
    """Mean TTFT by physical part (rate mode): prefill steps, engine overhead, pool queueing, the step in
    flight on arrival, the wait for a sequence slot."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


def read_workload(path: str | Path, rate_rps: float | None = None) -> tuple[Workload, float | None]:
    """A trace CSV (BurstGPT, Azure, plain) or a workload YAML (the scenario's ``workload:`` block:
    rate_rps, input, output, arrival_cv; rate_rps may be left out for offline or closed-loop runs).
    Returns the workload and the rate the file or ``rate_rps`` states (None when neither does)."""
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        from planner._yaml import load_yaml
        from planner.scenario import parse_workload

        raw = load_yaml(p, "workload")
        if isinstance(raw, dict) and "rate_profile" in raw:
            raise InputError("rate_profile", "absent from an estimate's workload (an estimate is one instance at one "
                             "rate; plan the day with planner plan); give rate_rps instead", where=str(p))
        if isinstance(raw, dict) and rate_rps is not None:
            raw = {**raw, "rate_rps": rate_rps}
        wl = parse_workload(raw, str(p), p.parent, require_rate=False)
        return wl, (wl.rate_rps if isinstance(raw, dict) and raw.get("rate_rps") is not None else None)
    trace = read_trace(p)
    if rate_rps is None and trace.rate_rps is None:
        return Workload.from_trace(trace, rate_rps=1.0), None
    wl = Workload.from_trace(trace, rate_rps=rate_rps)
    return wl, wl.rate_rps


def request_size(workload: Workload, percentile: float = 99.0) -> RequestSize:
    """Representative size of a workload: the one bucket of ``bucketize(workload, 1, 1)`` read by the
    same ``bucket_size`` the planner uses, so a TTFT percentile means the same in ``estimate`` and ``plan``."""
    return bucket_size(bucketize(workload, 1, 1, percentile=percentile).buckets[0])


def _positive(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(name, "a number > 0", value)
    return float(value)


def estimate(model: str | None = None, accelerator: str | None = None, tp: int = 1, pp: int = 1, ep: int = 1,
             precision: str = "bf16", kv_dtype: str | None = None, engine: str = "vllm", isl: int | None = None,
             osl: int | None = None, workload: Workload | str | Path | None = None, concurrency: int | None = None,
             rate_rps: float | None = None, slo: SLO | None = None, role: str = "colocated",
             deployment: Deployment | None = None, dp_attn: bool = False, pool: int = 1, **db: Any) -> Estimate:
    """Throughput, latency and limits of one instance (see the module docstring for the modes).

    Give ``model`` and ``accelerator`` (with parallelism, precision and engine), or a ready
    ``deployment``, not both. A workload file that states a rate is estimated at that rate unless
    ``concurrency`` or ``rate_rps`` says otherwise. ``pool``: instances sharing the request stream
    behind one balancer (``rate_rps`` is then one instance's share; queueing as G/G/pool)."""
    isl, osl, concurrency, rate_rps, pool = (v.item() if isinstance(v, np.generic) else v
                                             for v in (isl, osl, concurrency, rate_rps, pool))
    if isinstance(slo, dict):  # a notebook's {"ttft_s": 1, "tpot_s": 0.05}
        try:
            slo = SLO(**slo)
        except TypeError:
            raise InputError("slo", "an SLO or a dict of ttft_s, tpot_s, percentile", sorted(slo)) from None
    if slo is not None and not isinstance(slo, SLO):
        raise InputError("slo", "an SLO (planner.SLO) or a dict of ttft_s, tpot_s, percentile", slo)
    if workload is not None and not isinstance(workload, Workload | str | Path):
        raise InputError("workload", "a Workload, or a path to a workload or trace file", workload)
    if deployment is not None and not isinstance(deployment, Deployment):
        raise InputError("deployment", "a Deployment (planner.deployment(...))", deployment)
    if concurrency is not None and rate_rps is not None:
        raise InputError("concurrency/rate", "one of --concurrency or --rate, not both")
    rate_rps = _positive(rate_rps, "rate")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or concurrency < 1):
        raise InputError("concurrency", "an integer >= 1", concurrency)
    role = role.strip().lower() if isinstance(role, str) else role
    if role not in ("colocated", "prefill", "decode"):
        raise InputError("role", "colocated, prefill or decode", role)
    if deployment is not None and (model is not None or accelerator is not None):
        raise InputError("deployment", "either a deployment or model and accelerator names, not both")
    if deployment is None and (model is None or accelerator is None):
        raise InputError("model/accelerator", "both a model and an accelerator (or a deployment)")
    d = deployment or make_deployment(model, accelerator, tp, pp, ep, precision, kv_dtype, engine, dp_attn=dp_attn,
                                      **db)
    notes: list[str] = []
    if workload is not None and not isinstance(workload, Workload):
        workload, stated = read_workload(workload, rate_rps)
        if rate_rps is None and concurrency is None and stated is not None:
            rate_rps = stated
            notes.append(f"rate {stated:g} req/s from the workload file")
    elif isinstance(workload, Workload) and rate_rps is None and concurrency is None:
        rate_rps = workload.rate_rps
    if workload is None:
        if isl is None or osl is None:
            raise InputError("isl/osl", "both --isl and --osl, or --workload FILE")
        for name, val in (("isl", isl), ("osl", osl)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise InputError(name, "an integer >= 1", val)
        if d.model.max_context and isl + osl > d.model.max_context:
            raise InputError("isl/osl", f"isl + osl within the model's {d.model.max_context:,}-token context",
                             isl + osl)
        workload = Workload.fixed(rate_rps or 1.0, isl, osl)  # the rate is used only in rate mode
    pct = slo.percentile if slo else 99.0
    size = request_size(workload, pct)
    if d.settings.speculative is not None:
        sp = d.settings.speculative
        notes.append(f"speculative decoding: {sp.method}, k = {sp.draft_tokens}, acceptance {sp.acceptance:g} -> "
                     f"{sp.tokens_per_step:.3g} tokens per step (planner.speculative)")
    if d.settings.prefix_cache_hit:
        notes.append(f"prefix cache: {d.settings.prefix_cache_hit:.0%} of prompt tokens cached, not prefilled")
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise InputError("pool", "an integer >= 1 (instances behind one balancer)", pool)
    inst = instance_model(d, role, size, arrival_cv=workload.arrival_cv, open_loop=rate_rps is not None, pool=pool)
    mem = inst.memory
    if not mem.fits:
        raise PlannerError(f"does not fit: {mem.reason}")
    if not inst.grid:
        caps = ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in inst.caps.items())
        raise PlannerError(f"cannot serve one request of {size.isl:.0f}+{size.osl:.0f} tokens: concurrency caps are "
                           f"{caps} (each must allow at least one sequence); use more GPUs or a larger KV room")

    pcts = tuple(sorted({50.0, 90.0, 99.0, pct}))
    if rate_rps is not None:
        mode = "rate"
        lat = inst.latency(rate_rps, pcts)
        if not lat.stable:
            raise PlannerError(f"rate: {rate_rps:g} req/s exceeds this instance's capacity of {inst.max_rps:.3g} "
                               f"req/s ({inst.concurrency_bound.replace('_', ' ')} limits concurrency to "
                               f"{inst.max_concurrency:.0f}); lower the rate or add instances")
        pt = inst.point_at_rate(rate_rps)
        conc, rps = lat.concurrency, rate_rps
        out_tps = rps * size.osl
        ttft, tpot = lat.ttft_s, lat.tpot_s
        util = lat.utilisation
        step = pt.step_s if pt else math.nan
    elif concurrency is not None:
        mode = "concurrency"
        conc, rps, out_tps, ttft, tpot, step = _closed_loop(inst, concurrency, pcts, notes)
        util = None
    else:
        mode = "offline"
        top = inst.grid[-1]
        conc, rps, out_tps = top.concurrency, top.requests_per_s, top.output_tokens_per_s
        ttft, tpot = {}, {"mean": top.tpot_s}
        util, step = 1.0, top.step_s
    bound = _bound(inst, conc, mode)
    goodput = None
    if slo is not None:
        goodput = inst.goodput_rps(slo.ttft_s, slo.tpot_s, slo.percentile)
        if rate_rps is not None and rate_rps > goodput:
            bound = "SLO"
    gpus = d.parallel.gpus
    total_tps = rps * (size.isl + size.osl)
    if role == "prefill":
        out_tps = rps
        total_tps = rps * size.isl
    _ = step
    return Estimate(
        model=d.model.id, accelerator=d.accelerator.id, gpus=gpus, parallel=d.parallel.label(), engine=d.engine,
        role=role,
        mode=mode, isl=size.isl, osl=size.osl, concurrency=conc, requests_per_s=rps, output_tokens_per_s=out_tps,
        output_tokens_per_s_per_gpu=out_tps / gpus, total_tokens_per_s=total_tps, ttft_s=ttft, tpot_s=tpot,
        bound=bound, memory=mem.to_dict(), rate_rps=rate_rps, utilisation=util, max_rps=inst.max_rps,
        max_goodput_rps=goodput, slo=asdict(slo) if slo else None, notes=tuple(notes),
        ttft_parts_s=inst.ttft_parts(rate_rps) if mode == "rate" and hasattr(inst, "ttft_parts") else {},
    )


def latency_sweep(dep: Deployment, isl: float, osl: float, arrival_cv: float = 1.0,
                  percentiles: tuple[float, ...] = (50.0, 90.0, 99.0), points: int = 12) -> list[dict[str, Any]]:
    """TTFT/TPOT of one colocated instance from 5% to 95% of its maximum rate (for plots and tables)."""
    inst = instance_model(dep, "colocated", RequestSize(float(isl), float(osl)), arrival_cv=arrival_cv)
    if not inst.fits or inst.max_rps <= 0:
        raise PlannerError(f"does not fit: {inst.memory.reason}")
    rows = []
    for frac in np.linspace(0.05, 0.95, points):
        lat = inst.latency(frac * inst.max_rps, percentiles)
        rows.append({"rate_rps": lat.rate_rps, "utilisation": lat.utilisation, "ttft_s": lat.ttft_s,
                     "tpot_s": lat.tpot_s})
    return rows


def _closed_loop(inst: Instance, n: int, pcts: tuple[float, ...], notes: list[str]):
    """N clients each sending its next request when the previous one ends (a benchmark run of the
    profile's ``bench_waves`` prompts per client). TTFT is the closed loop's
    own mechanics (``planner.serving.closed_loop``: an idle-start wave, then groups that keep their
    offsets) plus the engine's per-request overhead; TPOT is the colocated step at N (with its prefill
    share); the rate follows from Little's law, λ = N / (TTFT + (O−1)·TPOT), capped at the instance's
    maximum, where the clients queue for it and Little's law gives the extra wait."""
    O = inst.size.osl
    n_eff = min(float(n), inst.max_concurrency)
    if n_eff < n:
        notes.append(f"concurrency {n} exceeds the {inst.concurrency_bound.replace('_', ' ')} cap of "
                     f"{inst.max_concurrency:.0f}; the rest queue")
    tpot = inst.step_s(n_eff)
    decode_s = max(O - 1, 0) * tpot
    ttft = closed_loop_ttft_s(inst, n_eff, inst.dep.eff.bench_waves, pcts)
    ttft = {k: v + inst.dep.eff.ttft_overhead_s for k, v in ttft.items()}
    top = inst.max_rps * 0.999
    rate = n_eff / (ttft["mean"] + decode_s)
    if rate > top:  # the instance cannot keep up: clients queue for it (Little's law over the cycle)
        shift = n_eff / top - decode_s - ttft["mean"]
        ttft = {k: v + shift for k, v in ttft.items()}
        rate = top
    if n > n_eff:  # clients beyond the cap wait for a slot: Little's law over all n clients
        extra = (n - n_eff) / rate
        ttft = {k: v + extra for k, v in ttft.items()}
    tp = {"mean": tpot, **{f"p{p:g}": tpot for p in pcts}}
    return n_eff, rate, rate * O, ttft, tp, tpot


def _bound(inst: Instance, conc: float, mode: str) -> str:
    """What limits throughput here: the step's bound, or the concurrency cap when the step
    is memory-bound at the cap (more sequences would still help)."""
    d = inst.dep
    I, O = inst.size.isl, inst.size.osl
    if isinstance(inst, Prefill):
        st = step_time(d.model, d.accelerator, d.parallel, d.precision, prefill_shape(inst.prefill_batch, I), d.eff)
        return _label(st.bound)
    st = step_time(d.model, d.accelerator, d.parallel, d.precision, decode_shape(max(conc, 1.0), I + O / 2.0), d.eff)
    step_bound = _label(st.bound)
    if mode == "offline" and step_bound != "compute":
        return {"kv_capacity": "KV capacity", "max_seqs": "sequence cap", "token_budget": "token budget"}[
            inst.concurrency_bound]
    return step_bound


def _label(bound: str) -> str:
    return {"memory": "memory bandwidth", "communication": "communication"}.get(bound, bound)
