"""Throughput against interactivity: tokens/s per GPU against tokens/s per user for every
parallelism of one model on one accelerator, colocated and disaggregated, and its Pareto front.

Each operating point is a decode concurrency of an instance model (``serving.roles``): tokens/s/user
= 1 / mean TPOT, tokens/s/GPU = output tokens/s / GPUs. A disaggregated point is a decode instance
plus the share of the best prefill instance (most requests/s per GPU) that its request rate needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from planner.deployment import make_deployment
from planner.errors import InfeasibleError, InputError, PlannerError
from planner.hardware import HardwareDB, get_accelerator
from planner.models import get_model
from planner.profile import EngineSettings
from planner.serving.instance import RequestSize
from planner.serving.roles import instance_model

TP_CHOICES = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class ParetoPoint:
    """One operating point (SI units; tokens are output tokens)."""

    mode: str
    decode: str
    prefill: str
    concurrency: float
    tpot_s: float
    tokens_per_s_per_user: float
    tokens_per_s_per_gpu: float
    gpus: float
    on_front: bool = False


def _options(model, acc) -> list[dict]:
    """Every parallelism the deployment checks accept: TP up to the scale-up domain, PP 1 or 2, EP
    dividing TP for MoE models, data-parallel attention for MoE at TP >= 2."""
    out = []
    for tp in (t for t in TP_CHOICES if t <= acc.scaleup_domain):
        for pp in (1, 2):
            eps = [e for e in (1, 2, 4, 8, 16) if tp % e == 0] if model.n_experts else [1]
            for ep in eps:
                for dpa in ((False, True) if model.n_experts and tp >= 2 else (False,)):
                    out.append({"tp": tp, "pp": pp, "ep": ep, "dp_attn": dpa})
    return out


def _label(o: dict) -> str:
    return f"TP{o['tp']}" + (f"·PP{o['pp']}" if o["pp"] > 1 else "") + (f"·EP{o['ep']}" if o["ep"] > 1 else "") + \
        ("·DPA" if o["dp_attn"] else "")


def sweep(model: str, gpu: str, isl: int, osl: int, precision: str = "bf16", kv_dtype: str | None = None,
          engine: str = "vllm", hw: HardwareDB | None = None, disaggregated: bool = True,
          settings: EngineSettings | None = None) -> list[ParetoPoint]:
    """All operating points of every parallelism, with ``on_front`` marking the non-dominated ones."""
    if isl < 1 or osl < 1:
        raise PlannerError(f"--isl/--osl: expected token counts >= 1 (got {isl}, {osl})")
    m, acc = get_model(model), get_accelerator(gpu, hw)
    if m.max_context and isl + osl > m.max_context:
        raise InputError("isl/osl", f"isl + osl within the model's {m.max_context:,}-token context", isl + osl)
    size = RequestSize(float(isl), float(osl))
    deps = []
    for o in _options(m, acc):
        try:
            deps.append((o, make_deployment(m, acc, precision=precision, kv_dtype=kv_dtype, engine=engine,
                                            hardware_db=hw, settings=settings, **o)))
        except PlannerError:
            continue
    if not deps:
        raise PlannerError(f"{m.id} cannot be split to run on {acc.id} (no parallelism passes the checks)")
    points: list[ParetoPoint] = []
    best_prefill: tuple[float, str, float] | None = None  # (requests/s per GPU, label, GPUs)
    for o, d in deps:
        gpus = d.parallel.gpus
        col = instance_model(d, "colocated", size)
        if col.fits and col.serviceable:
            for p in col.grid:
                points.append(ParetoPoint("colocated", _label(o), "", p.concurrency, p.tpot_s, 1.0 / p.tpot_s,
                                          p.output_tokens_per_s / gpus, float(gpus)))
        if disaggregated:
            pre = instance_model(d, "prefill", size)
            if pre.fits and pre.serviceable and pre.max_rps > 0:
                per_gpu = pre.max_rps / gpus
                if best_prefill is None or per_gpu > best_prefill[0]:
                    best_prefill = (per_gpu, _label(o), float(gpus))
    if disaggregated and best_prefill is not None:
        for o, d in deps:
            dec = instance_model(d, "decode", size)
            if not (dec.fits and dec.serviceable):
                continue
            for p in dec.grid:
                total = d.parallel.gpus + p.requests_per_s / best_prefill[0]
                points.append(ParetoPoint("disaggregated", _label(o), best_prefill[1], p.concurrency, p.tpot_s,
                                          1.0 / p.tpot_s, p.output_tokens_per_s / total, total))
    if not points:
        raise InfeasibleError(f"no parallelism of {m.id} on {acc.id} can serve one request of {isl:,}+{osl:,} "
                              "tokens (weights and KV do not fit, or the caps allow no sequence); try a larger "
                              "accelerator, a lower precision or shorter requests")
    return mark_front(points)


def dominates(a: ParetoPoint, b: ParetoPoint) -> bool:
    """``a`` is at least as good on both axes and better on one."""
    return (a.tokens_per_s_per_gpu >= b.tokens_per_s_per_gpu and a.tokens_per_s_per_user >= b.tokens_per_s_per_user
            and (a.tokens_per_s_per_gpu > b.tokens_per_s_per_gpu or a.tokens_per_s_per_user > b.tokens_per_s_per_user))


def mark_front(points: list[ParetoPoint]) -> list[ParetoPoint]:
    """Flag the non-dominated points: sorted by tokens/s/user descending, a point is on the front when
    its tokens/s/GPU beats every point at least as interactive."""
    order = sorted(range(len(points)), key=lambda i: (-points[i].tokens_per_s_per_user,
                                                      -points[i].tokens_per_s_per_gpu))
    front, best = set(), -1.0
    for i in order:
        if points[i].tokens_per_s_per_gpu > best:
            front.add(i)
            best = points[i].tokens_per_s_per_gpu
    return [ParetoPoint(**{**asdict(p), "on_front": i in front}) for i, p in enumerate(points)]


def best_under_slo(points: list[ParetoPoint], tpot_limit_s: float | None) -> ParetoPoint | None:
    """The most tokens/s/GPU among front points that meet the TPOT limit."""
    ok = [p for p in points if p.on_front and (tpot_limit_s is None or p.tpot_s <= tpot_limit_s)]
    return max(ok, key=lambda p: p.tokens_per_s_per_gpu) if ok else None
