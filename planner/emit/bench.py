"""Benchmark commands that check a group's prediction once deployed (``vllm bench serve`` with the
lengths and request rate the plan sends it), tagged so ``planner validate`` can read the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.emit.engines import GroupSpec, Launch, shell_line
from planner.emit.flags import engine_flags


@dataclass(frozen=True)
class Load:
    """What the plan sends a group: request rate (requests/s) and rate-weighted mean lengths (tokens);
    the worst per-bucket TTFT and TPOT (s) among the buckets it serves."""

    rate_rps: float
    isl_tokens: int
    osl_tokens: int
    ttft_s: float
    tpot_s: float


def _mid(rng: str) -> float:
    lo, hi = (float(x) for x in rng.split("-"))
    return (lo + hi) / 2


def load_of(plan: dict[str, Any], shares: dict[str, float]) -> Load:
    """The load a group's bucket shares carry, from the plan's buckets."""
    rate = isl = osl = ttft = tpot = 0.0
    for b in plan["buckets"]:
        s = float(shares.get(str(b["index"]), 0.0))
        if s <= 0:
            continue
        r = b["rate_rps"] * s
        rate += r
        isl += r * _mid(b["isl"])
        osl += r * _mid(b["osl"])
        ttft, tpot = max(ttft, b["ttft_s"] or 0.0), max(tpot, b["tpot_s"] or 0.0)
    return Load(rate, round(isl / rate) if rate else 0, round(osl / rate) if rate else 0, ttft, tpot)


def bench_command(plan: dict[str, Any], g: GroupSpec, url: str, load: Load, model: str, result: str) -> str:
    """``vllm bench serve`` at the group's rate and lengths (works against any OpenAI-compatible server),
    with the deployment in ``--metadata`` for ``planner validate``."""
    fl = engine_flags("vllm").raw["bench"]
    pct = f"{float(plan['slo']['percentile']):g}"
    meta = {"planner_model": plan["model"], "planner_accelerator": g.accelerator,
            "planner_count": g.instances * g.gpus_per_instance, "planner_tp": g.tp, "planner_pp": g.pp,
            "planner_ep": g.ep, "planner_dp_attn": str(g.dp_attn).lower(), "planner_precision": g.precision,
            "planner_kv_dtype": g.kv_dtype, "planner_engine": g.engine, "planner_stat": f"p{pct}"}
    n = max(200, round(load.rate_rps * 600))  # ten minutes of traffic, at least 200 requests
    argv = (*fl["command"], "--backend", "openai", "--base-url", url, "--model", model, "--dataset-name", "random",
            "--random-input-len", str(load.isl_tokens), "--random-output-len", str(load.osl_tokens),
            "--request-rate", f"{load.rate_rps:.4g}", "--num-prompts", str(n), "--percentile-metrics", "ttft,tpot",
            "--metric-percentiles", pct, "--save-result", "--result-filename", result, "--metadata",
            *[f"{k}={v}" for k, v in meta.items()])
    return shell_line(argv)


def group_url(g: GroupSpec, la: Launch) -> str:
    return f"http://{g.name}:{la.port}"
