"""Predicted vs measured: per-row predictions, error metrics per group, and pass/fail gates.

Absolute percentage error ``APE = |predicted − measured| / measured``; groups report the
median (MdAPE), the 90th percentile (p90 APE) and the bias ``exp(median log(predicted /
measured)) − 1`` (positive: the model over-predicts). Groups are (accelerator, engine, model
family, metric) in ``summary`` and (accelerator family, metric) in ``families``, the family being
the hardware database entry's ``family`` (ampere, hopper, blackwell, cdna3, ascend-a2, ...).
A row that cannot be evaluated (unknown model or accelerator, non-numeric values, a
configuration that does not fit) is skipped with its reason; the rest are still evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.calib.measured import METRICS, mode_of
from planner.deployment import make_deployment as deployment
from planner.errors import PlannerError
from planner.hardware import HardwareDB, default_hardware
from planner.lengths import Fixed, LogNormal
from planner.profile import EngineSettings, Profile, load_profile
from planner.serving.estimate import estimate
from planner.speculative import Speculative, acceptance_for
from planner.workload import SLO, Workload

TP_CHOICES = (1, 2, 4, 8)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(v: Any, name: str, default: int | None = None) -> int:
    f = _num(v)
    if f is None:
        if default is not None:
            return default
        raise PlannerError(f"{name}: expected a number, got {v!r}")
    if f < 1 or f != int(f):
        raise PlannerError(f"{name}: expected a whole number >= 1, got {v!r}")
    return int(f)


NUMERIC_COLUMNS = ("count", "tp", "pp", "ep", "isl", "osl", "concurrency", "rate_rps", "output_tokens_per_s", "ttft_s",
                   "tpot_s", "isl_p99", "ttft_limit_s", "tpot_limit_s", "software_speed", "num_prompts", "max_seqs",
                   "token_budget", "memory_fraction", "spec_draft_tokens", "spec_accept_length")
"""Columns that hold numbers: blank, or a finite number >= 0; anything else fails the row naming it."""


def check_numbers(row: dict) -> None:
    """Refuse a row whose numeric cell holds text, a negative or a non-finite number, rather than read it as
    blank (``concurrency=thirty`` would score a closed-loop run as offline); and a ``count`` that is not a
    whole number of instances of the stated ``tp`` × ``pp``."""
    for key in NUMERIC_COLUMNS:
        v = row.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise PlannerError(f"{key}: expected a number, got {v!r}") from None
        if not math.isfinite(f) or f < 0:
            raise PlannerError(f"{key}: expected a finite number >= 0, got {v!r}")
    count, tp, pp = (_num(row.get(k)) for k in ("count", "tp", "pp"))
    if count is not None and tp is not None and tp >= 1:
        per = tp * (pp if pp is not None and pp >= 1 else 1)
        if count < per or count % per:
            raise PlannerError(f"count: expected a whole number of instances of tp x pp = {per:g} accelerators, got "
                               f"{row.get('count')!r}")


def _text(v: Any, default: str) -> str:
    """A string cell, or ``default`` when it is empty/NaN."""
    if isinstance(v, str) and v.strip():
        return v.strip().lower()
    return default


def _stat(v: Any) -> str:
    """Which latency statistic a row holds: mean (default), p50, p90 or p99."""
    text = _text(v, "mean")
    if text in ("mean", "avg", "average"):
        return "mean"
    key = "p" + text.removeprefix("p")
    if key not in ("p50", "p90", "p99"):
        raise PlannerError(f"stat: expected mean, p50, p90 or p99, got {v!r}")
    return key


def _flag(v: Any) -> bool:
    """A true/false cell: bools, 1/0, yes/no, true/false; blank is false."""
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y")
    f = _num(v)
    return bool(f) if f is not None else False


def _tokens(v: Any, name: str) -> int:
    """Mean token counts may be fractional (dataset means): round to whole tokens."""
    f = _num(v)
    if f is None or f < 0.5:
        raise PlannerError(f"{name}: expected a token count >= 1, got {v!r}")
    return max(1, round(f))


def _profile_for(engine: str, profiles: dict[str, Profile], override: Profile | None) -> Profile:
    if override is not None:
        return override
    if engine not in profiles:
        profiles[engine] = load_profile(engine)
    return profiles[engine]


def _speculative(row: dict) -> Speculative | None:
    """The row's speculative decoding (optional columns ``spec_method`` mtp | eagle, ``spec_draft_tokens``
    k and ``spec_accept_length``, the measured mean tokens per verify step E, e.g. SGLang's ``Accept
    length``), as ``planner.speculative`` models it: the per-token acceptance that gives that E at k."""
    method = _text(row.get("spec_method"), "")
    if method in ("", "none", "off"):
        return None
    k = _int(row.get("spec_draft_tokens"), "spec_draft_tokens")
    e = _num(row.get("spec_accept_length"))
    if e is None:
        raise PlannerError(f"spec_accept_length: expected the measured tokens per verify step, got "
                           f"{row.get('spec_accept_length')!r}")
    return Speculative(method=method, draft_tokens=k, acceptance=acceptance_for(k, e))


def _settings(row: dict) -> EngineSettings:
    """Engine settings the row states (optional columns ``max_seqs``, ``token_budget``,
    ``memory_fraction``, as the run's launch command set them or its engine version defaulted them; blank:
    the profile's) and its speculative decoding."""
    max_seqs = _num(row.get("max_seqs"))
    budget = _num(row.get("token_budget"))
    frac = _num(row.get("memory_fraction"))
    return EngineSettings(max_seqs=_int(max_seqs, "max_seqs") if max_seqs is not None else None,
                          token_budget=_int(budget, "token_budget") if budget is not None else None,
                          memory_fraction=frac, speculative=_speculative(row))


def _stated_waves(row: dict, prof: Profile, acc: Any) -> Profile:
    """A closed-loop row that states the benchmark's ``num_prompts`` fixes its prompts per client
    (num_prompts / concurrency) instead of the profile's fitted ``bench_waves``."""
    prompts, clients = _num(row.get("num_prompts")), _num(row.get("concurrency"))
    if not prompts or not clients or prompts <= 0 or clients <= 0:
        return prof
    eff = prof.for_accelerator(acc.id, acc.family)
    return prof.with_override(acc.id, replace(eff, bench_waves=max(prompts / clients, 1.0)))


def predict_row(row: dict, profile: Profile | None = None, hw: HardwareDB | None = None,
                profiles: dict[str, Profile] | None = None) -> dict[str, float]:
    """Predicted metrics for one measured row (raises PlannerError with the reason when it can't).

    A ``software_speed`` s (the row's software runs every step s times as fast as the profile:
    ``planner.calib.software``) rescales time exactly: the model is evaluated at rate λ/s with p99
    limits s·L, and its throughput and rates come back times s, its latencies over s."""
    speed = _cell(row, "software_speed")
    if speed is not None and speed != 1.0:
        if speed <= 0:
            raise PlannerError(f"software_speed: expected a positive factor, got {row.get('software_speed')!r}")
        slow = {**row, "software_speed": None}
        for k in ("ttft_limit_s", "tpot_limit_s"):
            if _num(row.get(k)) is not None:
                slow[k] = _num(row[k]) * speed
        if _num(row.get("rate_rps")) is not None and _limits(row) is None:
            slow["rate_rps"] = _num(row["rate_rps"]) / speed
        try:
            pred = predict_row(slow, profile, hw, profiles)
        except PlannerError as exc:  # its rates and limits were on the profile's clock
            raise PlannerError(f"{exc} (at software_speed {speed:g}: rates / {speed:g}, limits x {speed:g})") from None
        return {k: (v * speed if k in ("output_tokens_per_s", "rate_rps") else v / speed if k in ("ttft_s", "tpot_s")
                    else v) for k, v in pred.items()}
    profiles = profiles if profiles is not None else {}
    hw = hw or default_hardware()
    from planner.calib.published import PROFILE_FOR_ENGINE

    # engines without a profile of their own are predicted with the nearest one (vllm-ascend is vLLM's
    # Ascend plugin; planner.calib.published says why); the row keeps its engine name in the summary
    engine = _text(row.get("engine"), "vllm")
    engine = PROFILE_FOR_ENGINE.get(engine, engine)
    prof = _profile_for(engine, profiles, profile)
    isl, osl = _tokens(row.get("isl"), "isl"), _tokens(row.get("osl"), "osl")
    mode = mode_of(row)
    count = _num(row.get("count"))
    pp = _int(row.get("pp"), "pp", 1)
    ep = _int(row.get("ep"), "ep", 1)
    precision = _text(row.get("precision"), "bf16")
    kv = _text(row.get("kv_dtype"), "") or None
    acc = hw.get(str(row["accelerator"]))
    stat = _stat(row.get("stat"))
    settings = _settings(row)
    limits = _limits(row)
    if mode == "concurrency":
        prof = _stated_waves(row, prof, acc)
    tps = [_int(row.get("tp"), "tp")] if _num(row.get("tp")) is not None else [
        t for t in TP_CHOICES if t <= acc.scaleup_domain and (count is None or t * pp <= count)]
    best: dict[str, float] | None = None
    best_score = -math.inf
    tuned: tuple[float, Any, float, int, float] | None = None  # (goodput per GPU, instance, rate, instances, tp)
    last_err: Exception | None = None
    for tp in tps:
        try:
            d = deployment(str(row["model"]), acc, tp=tp, pp=pp, ep=min(ep, tp), precision=precision,
                           kv_dtype=kv, engine=prof, hardware_db=hw, dp_attn=_flag(row.get("dp_attn")),
                           settings=settings)
            instances = max(int(count // (tp * pp)), 1) if count else 1
            kwargs: dict[str, Any] = {}
            if mode == "concurrency":
                kwargs["concurrency"] = _int(row.get("concurrency"), "concurrency")
            elif mode == "rate":  # the system's stream over its instances, one G/G/n queue
                kwargs["rate_rps"] = _num(row.get("rate_rps")) / instances
                kwargs["pool"] = instances
            isl_p99 = _num(row.get("isl_p99"))
            if mode == "rate" and limits is not None:  # latencies only for the chosen TP, after the loop
                inst, rate = _at_limits(d, isl, osl, isl_p99, instances, limits)
                if tuned is None or rate / d.parallel.gpus > tuned[0]:
                    tuned = (rate / d.parallel.gpus, inst, rate, instances, float(tp))
                continue
            if isl_p99 and isl_p99 > isl:
                wl = Workload(kwargs.get("rate_rps") or 1.0, LogNormal.from_mean_p99(isl, isl_p99), Fixed(osl))
                est = estimate(workload=wl, deployment=d, **kwargs)
            else:
                est = estimate(isl=isl, osl=osl, deployment=d, **kwargs)
        except PlannerError as exc:
            last_err = exc
            continue
        pred = {"output_tokens_per_s": est.output_tokens_per_s * instances,
                "ttft_s": est.ttft_s.get(stat, math.nan), "tpot_s": est.tpot_s.get(stat, math.nan),
                "tp": float(tp)}
        # offline: the TP with the most throughput; at a rate (same throughput): the one with the most
        # headroom per GPU, as a submitter tuning for the Server scenario would choose
        score = (est.max_rps / (tp * pp) if mode == "rate" else pred["output_tokens_per_s"])
        if best is None or score > best_score:
            best, best_score = pred, score
    if tuned is not None:
        _, inst, rate, instances, tp = tuned
        return {**_latency_at(inst, rate, instances, stat), "tp": tp}
    if best is None:
        raise PlannerError(str(last_err) if last_err else "no parallelism fits")
    return best


def measured_values(row: dict) -> dict[str, float | None]:
    """What a row measured: ``METRICS``, and the submitted rate of a row tuned to its p99 limits."""
    out = {m: _num(row.get(m)) for m in METRICS}
    if mode_of(row) == "rate" and _limits(row) is not None:
        out["rate_rps"] = _num(row.get("rate_rps"))
    return out


def _cell(row: dict, key: str) -> float | None:
    """An optional numeric cell: None when blank or NaN; a one-line error when it holds something else."""
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
        return None
    f = _num(v)
    if f is None:
        raise PlannerError(f"{key}: expected a number, got {v!r}")
    return f


def _limits(row: dict) -> SLO | None:
    """The p99 limits a row's rate was tuned against (``ttft_limit_s`` and ``tpot_limit_s``: an MLPerf
    Server run, whose submitter raised ``target_qps`` until the next step would break one), else None."""
    ttft, tpot = _cell(row, "ttft_limit_s"), _cell(row, "tpot_limit_s")
    if ttft is None and tpot is None:
        return None
    if ttft is None or tpot is None:
        raise PlannerError("ttft_limit_s/tpot_limit_s: expected both limits (a run tuned to its p99 TTFT and "
                           "TPOT limits), or neither")
    if ttft <= 0 or tpot <= 0:
        raise PlannerError(f"ttft_limit_s/tpot_limit_s: expected positive seconds, got {ttft!r}/{tpot!r}")
    return SLO(ttft_s=ttft, tpot_s=tpot, percentile=99.0)


def _at_limits(d: Any, isl: int, osl: int, isl_p99: float | None, instances: int,
               limits: SLO) -> tuple[Any, float]:
    """A run tuned to its limits, predicted at the model's own operating point: the highest rate per
    instance whose p99 TTFT and TPOT meet the limits (``goodput``, Poisson arrivals shared by the
    system's instances as one G/G/n queue), and the latencies there. Scored: that rate times the instances
    against the submitted ``rate_rps``, and the latencies against the measured ones.

    Why not the latencies at the submitted rate: the submitted rates sit at 90-99% of capacity, where
    TTFT and TPOT grow like 1/(1 − ρ) and a few percent of capacity error is a factor in latency; the
    highest rate meeting the limits is what the run measured, and it is well-conditioned. Returns
    (instance model, that rate per instance); the submitter's choice of TP is the one with the most of it
    per GPU, and ``_latency_at`` gives the latencies there."""
    from planner.serving.estimate import request_size
    from planner.serving.roles import instance_model

    lengths = LogNormal.from_mean_p99(isl, isl_p99) if isl_p99 and isl_p99 > isl else Fixed(isl)
    size = request_size(Workload(1.0, lengths, Fixed(osl)), limits.percentile)
    if d.model.max_context and isl + osl > d.model.max_context:
        raise PlannerError(f"isl/osl: isl + osl within the model's {d.model.max_context:,}-token context, got "
                           f"{isl + osl:,}")
    inst = instance_model(d, "colocated", size, arrival_cv=1.0, open_loop=True, pool=instances)
    if not inst.fits:
        raise PlannerError(f"does not fit: {inst.memory.reason}")
    if not inst.grid:
        raise PlannerError(f"cannot serve one request of {size.isl:.0f}+{size.osl:.0f} tokens: its concurrency "
                           "caps allow no sequence")
    rate, _ = inst.goodput(limits.ttft_s, limits.tpot_s, limits.percentile)
    if rate <= 0:
        raise PlannerError(f"no rate meets p99 TTFT <= {limits.ttft_s:g} s and TPOT <= {limits.tpot_s:g} s")
    return inst, rate


def _latency_at(inst: Any, rate: float, instances: int, stat: str) -> dict[str, float]:
    """The predictions of a row tuned to its limits: the system's rate and the latency ``stat`` at it."""
    pcts = (float(stat[1:]),) if stat != "mean" else (99.0,)
    lat = inst.latency(rate, pcts)
    if not lat.stable:  # the goodput grid ends at the capacity, where the queue is on the edge
        lat = inst.latency(rate * (1.0 - 1e-3), pcts)
    return {"rate_rps": rate * instances, "ttft_s": lat.ttft_s.get(stat, math.nan),
            "tpot_s": lat.tpot_s.get(stat, math.nan), "output_tokens_per_s": math.nan}


@dataclass(frozen=True)
class Validation:
    """Per-row results, per-group summary and the rows that were skipped (with reasons)."""

    rows: pd.DataFrame
    summary: pd.DataFrame
    skipped: tuple[tuple[int, str], ...] = field(default_factory=tuple)
    families: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(FAMILY_COLUMNS)))
    """Per accelerator family and metric: n, mdape, p90_ape, bias (as in ``summary``)."""

    def gate(self, max_mdape: float | None = None, max_p90_ape: float | None = None) -> list[str]:
        """Messages for each group that fails a gate (empty when all pass)."""
        fails = []
        for r in self.summary.to_dict("records"):
            label = f"{r['accelerator']}/{r['engine']}/{r['model_family']}/{r['metric']}"
            if max_mdape is not None and r["mdape"] > max_mdape:
                fails.append(f"{label}: MdAPE {100 * r['mdape']:.1f}% > {100 * max_mdape:.1f}%")
            if max_p90_ape is not None and r["p90_ape"] > max_p90_ape:
                fails.append(f"{label}: p90 APE {100 * r['p90_ape']:.1f}% > {100 * max_p90_ape:.1f}%")
        return fails

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary.to_dict("records"), "families": self.families.to_dict("records"),
                "rows": self.rows.to_dict("records"), "skipped": [{"row": i, "reason": r} for i, r in self.skipped]}


SUMMARY_KEYS = ("accelerator", "engine", "model_family", "metric")
FAMILY_KEYS = ("family", "metric")
STATS = ("n", "mdape", "p90_ape", "bias")
FAMILY_COLUMNS = (*FAMILY_KEYS, *STATS)


def error_summary(rows: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """n, MdAPE, p90 APE and bias (``exp(median log(predicted/measured)) − 1``) of ``rows`` per ``keys``."""
    if rows.empty:
        return pd.DataFrame(columns=[*keys, *STATS])
    log_ratio = np.log(rows["predicted"] / rows["measured"])
    return (rows.assign(log_ratio=log_ratio).groupby(list(keys))
            .agg(n=("ape", "size"), mdape=("ape", "median"), p90_ape=("ape", lambda x: x.quantile(0.9)),
                 bias=("log_ratio", lambda x: float(np.exp(x.median()) - 1)))
            .reset_index())


def family_of(model_id: str) -> str:
    """Model family for grouping: the id's leading name (llama, qwen3, deepseek, mixtral, gpt ...)."""
    return model_id.split("-")[0]


def validate_frame(df: pd.DataFrame, profile: Profile | None = None, hw: HardwareDB | None = None,
                   progress: Any = None) -> Validation:
    """Predict every row of ``df`` (our schema) and summarise errors per group."""
    if not isinstance(df, pd.DataFrame):
        raise PlannerError(f"measured rows: expected a pandas DataFrame in the measured schema, got "
                           f"{type(df).__name__}")
    hw = hw or default_hardware()
    profiles: dict[str, Profile] = {}
    out_rows: list[dict[str, Any]] = []
    skipped: list[tuple[int, str]] = []
    from planner.models import get_model

    for i, row in enumerate(df.to_dict("records")):
        if progress is not None:
            progress(i)
        try:
            check_numbers(row)
            measured = measured_values(row)
            if not any(v is not None and v > 0 for v in measured.values()):
                raise PlannerError("no positive numeric measurement in output_tokens_per_s, ttft_s, tpot_s")
            model = get_model(str(row["model"]))
            acc = hw.get(str(row["accelerator"]))
            pred = predict_row(row, profile, hw, profiles)
        except PlannerError as exc:
            skipped.append((i + 2, str(exc)))  # +2: header line and 1-based lines
            continue
        for metric, meas in measured.items():
            if meas is None or meas <= 0 or not math.isfinite(pred.get(metric, math.nan)):
                continue
            out_rows.append({
                "line": i + 2, "model": model.id, "model_family": family_of(model.id), "accelerator": acc.id,
                "family": acc.family,
                "engine": _text(row.get("engine"), "vllm"), "mode": mode_of(row), "metric": metric,
                "isl": row.get("isl"), "osl": row.get("osl"), "concurrency": row.get("concurrency"),
                "tp": pred["tp"], "measured": meas, "predicted": pred[metric],
                "ape": abs(pred[metric] - meas) / meas, "source": row.get("source", ""),
            })
    rows = pd.DataFrame(out_rows)
    if not rows.empty:
        rows["log_ratio"] = np.log(rows["predicted"] / rows["measured"])
    summary = error_summary(rows, SUMMARY_KEYS)
    families = error_summary(rows, FAMILY_KEYS)
    return Validation(rows, summary, tuple(skipped), families)


def read_measured_any(path: Path | str, software: bool = True) -> pd.DataFrame:
    """Our measured schema, a published format recognised by its header (MLPerf, aiconfigurator), or a
    ``vllm bench serve`` result JSON (``.json``). aiconfigurator silicon rows attributed to speculative
    runs, and repeats of one measurement, are left out (``planner.calib.silicon_layout``). ``software``:
    an MLPerf extract's rows get their round's software speed (``planner.calib.software``), which is
    relative to the shipped profiles, so only where those predict: not with another profile, and not
    for ``calibrate``, which fits the user's own."""
    from planner.calib.measured import from_aiconfigurator_silicon, from_mlperf, from_vllm_bench, read_measured

    if str(path).lower().endswith(".json"):
        return from_vllm_bench(path)
    try:
        head = pd.read_csv(path, nrows=0).columns
    except Exception:  # noqa: BLE001 - read_measured gives the one-line reason
        return read_measured(path)
    if "silicon_tpot_ms" in head:  # speculative runs and repeated exports are not scored or fitted
        rows = from_aiconfigurator_silicon(path)
        keep = ~(rows.pop("spec_unstated") | rows.pop("duplicate"))
        return rows[keep].reset_index(drop=True)
    if "tokens_per_s_per_accel" in head:  # each round's rows at its fitted software speed
        from planner.calib.software import with_software_speed

        rows = from_mlperf(path)
        return with_software_speed(rows) if software else rows
    return read_measured(path)
