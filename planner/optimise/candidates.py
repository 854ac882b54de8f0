"""Candidate instances and their capacity per workload bucket.

A candidate is one accelerator type × (TP, PP, EP) × role (colocated, prefill-only,
decode-only) that fits in memory, with TP inside one scale-up domain. Its capacity for a
bucket is the highest request rate one instance sustains with the bucket's TTFT and TPOT at
the SLO percentile (``InstanceModel.goodput``), times the target utilisation. For
disaggregated roles the KV cache crosses the scale-out link: its transfer time counts against
TTFT, and the link bandwidth caps the rate (``rate · I · kv_bytes ≤ link``).

Pruning keeps the set small without losing optima that matter: PP > 1 only when the model
does not fit at PP = 1 with the largest TP; EP only at 1 or the full TP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.api import Deployment
from planner.dtypes import Precision
from planner.errors import PlannerError
from planner.hardware import Accelerator
from planner.models import ModelArch
from planner.parallel import Parallel, check_parallel
from planner.perf.memory import memory_plan
from planner.profile import Profile
from planner.serving.model import InstanceModel, RequestSize
from planner.workload import SLO, Bucket

ROLES = ("colocated", "prefill", "decode")


@dataclass(frozen=True)
class Candidate:
    """One instance type the optimiser may buy, with its capacity per bucket (requests/s)."""

    key: str
    acc: Accelerator
    par: Parallel
    role: str
    gpus: int
    price_per_hour: float
    watts: float
    capacity_rps: tuple[float, ...]
    binds: tuple[str, ...]
    models: tuple[InstanceModel, ...] = field(repr=False, compare=False, default=())

    @property
    def label(self) -> str:
        return f"{self.acc.id} {self.par.label()} {self.role}"


@dataclass(frozen=True)
class Rejection:
    """Why an accelerator produced no usable candidate."""

    acc_id: str
    reason: str


def bucket_size(b: Bucket, percentile: float) -> RequestSize:
    """Representative request of a bucket: its mean lengths, its p90 input length for the TTFT
    tail, and c_s² of a uniform spread. The buckets already carry the length distribution (the
    longest prompts have their own bucket and share of the rate); the SLO percentile applies to
    the queueing tail, not again to the lengths inside a bucket."""
    tail = b.isl_p90
    spread = (b.isl_hi - b.isl_lo) / max(b.isl_mean, 1.0)
    return RequestSize(isl=b.isl_mean, osl=max(b.osl_mean, 1.0), isl_tail=max(tail, b.isl_mean),
                       cs2=spread**2 / 12.0)


def parallel_options(model: ModelArch, acc: Accelerator, tp_options: tuple[int, ...],
                     pp_options: tuple[int, ...]) -> list[Parallel]:
    """TP/PP/EP combinations the model can be split into on ``acc``."""
    out = []
    for tp in sorted(set(tp_options)):
        if tp > acc.scaleup_domain:
            continue
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


def build_candidates(model: ModelArch, accs: list[Accelerator], prec: Precision, profile: Profile,
                     buckets: list[Bucket], slo: SLO, arrival_cv: float, target_utilisation: float,
                     tp_options: tuple[int, ...], pp_options: tuple[int, ...], roles: tuple[str, ...] = ROLES,
                     progress=None, pool: int = 1) -> tuple[list[Candidate], list[Rejection]]:
    """Every fitting candidate with its per-bucket capacity, and a reason for each accelerator that has none."""
    cands: list[Candidate] = []
    rejections: list[Rejection] = []
    max_isl = max(b.isl_hi for b in buckets)
    max_osl = max(b.osl_hi for b in buckets)
    kv_tok = model.kv_bytes_per_token(prec.kv_bytes)
    for acc in accs:
        try:
            prec.gemm_dtype(set(acc.peak_flops))
        except PlannerError:
            rejections.append(Rejection(acc.id, f"cannot run {prec.weights} weights"))
            continue
        eff = profile.for_accelerator(acc.id, acc.family)
        options = parallel_options(model, acc, tp_options, pp_options)
        fitting: list[Parallel] = []
        best_mem = None
        for par in options:
            mp = memory_plan(model, acc, par, prec, eff, min_kv_tokens=int(max_isl + max_osl), engine=profile.engine)
            if best_mem is None or mp.max_kv_tokens > best_mem.max_kv_tokens:
                best_mem = mp
            if mp.fits:
                fitting.append(par)
        fit_pp1 = [p for p in fitting if p.pp == 1]
        if fit_pp1:
            fitting = fit_pp1
        elif fitting:
            biggest = max(p.tp for p in fitting)
            fitting = [p for p in fitting if p.tp == biggest]
        if not fitting:
            why = best_mem.reason if best_mem else (
                f"no TP in {sorted(set(tp_options))} x PP in {sorted(set(pp_options))} splits the model's "
                f"{model.n_heads} heads / {model.n_layers} layers within the {acc.scaleup_domain}-GPU scale-up domain")
            rejections.append(Rejection(acc.id, f"does not fit: {why}"))
            continue
        useful = 0
        for par in fitting:
            dep = Deployment(model, acc, par, prec, profile)
            memo: dict = {}  # step times shared by every role and bucket of this deployment
            for role in roles:
                caps, binds, models = [], [], []
                link = acc.scaleout_bw_bytes_per_s * par.gpus
                for b in buckets:
                    size = bucket_size(b, slo.percentile)
                    # queueing pool: instances behind one least-outstanding balancer, as the scenario
                    # states it (fixed, so more rate or a looser SLO can never lower the cost)
                    inst = InstanceModel(dep, role, size, arrival_cv=arrival_cv, _cache=memo, pool=pool)
                    extra = size.tail_isl * kv_tok / link if role == "prefill" else 0.0
                    rps, bind = inst.goodput(slo.ttft_s, slo.tpot_s, slo.percentile, extra_ttft_s=extra)
                    if role in ("prefill", "decode") and rps > 0:
                        link_rps = link / (size.isl * kv_tok)
                        if link_rps < rps:
                            rps, bind = link_rps, "kv_link"
                    caps.append(rps * target_utilisation)
                    binds.append(bind)
                    models.append(inst)
                if progress is not None:
                    progress()
                # kept even when it meets the SLO for no bucket: infeasibility reports use its latency floor
                useful += max(caps) > 0
                price = acc.price_per_hour * par.gpus
                cands.append(Candidate(
                    key=f"{acc.id}|{par.tp}|{par.pp}|{par.ep}|{'dpa' if par.dp_attn else 'tpa'}|{role}", acc=acc,
                    par=par, role=role,
                    gpus=par.gpus, price_per_hour=price, watts=acc.tdp_w * par.gpus, capacity_rps=tuple(caps),
                    binds=tuple(binds), models=tuple(models)))
        if not useful:
            rejections.append(Rejection(acc.id, "fits, but no parallelism meets the SLO for any request size"))
    return cands, rejections
