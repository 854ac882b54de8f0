"""TTFT of a closed-loop benchmark: N clients, each sending its next prompt when the last answer ends.

Benchmarks with fixed client concurrency (aiconfigurator's silicon runs, ``vllm bench serve
--max-concurrency``, genai-perf) start all N clients at once on an idle engine and stop after
``W·N`` prompts (W prompts per client). Two regimes follow from the engine's chunked prefill
(token budget ``B`` per step, prompts of ``I`` tokens, FCFS):

* **Idle-start wave** (the first prompt of every client). Prompt ``k`` gets its first token at
  the end of step ``⌈k·I/B⌉``; every step of the wave carries ``min(B, N·I)`` prompt tokens and
  takes ``t_w`` (one chunked step of that many tokens), so ``TTFT_k = ⌈k·I/B⌉·t_w`` and the wave's
  mean is ``t_w·mean_k⌈k·I/B⌉ ≈ (N+1)/2`` prefills.
* **Steady state** (every later prompt). Clients whose prompts shared a wave step finish on the same
  step (fixed lengths), so they stay a group of ``g = min(max(⌊B/I⌋, 1), N)`` and re-arrive together;
  groups keep the offsets the wave gave them. A re-arriving group finds the next step already running
  (the engine starts it at once) and waits it out (one full step ``t_step`` at concurrency N), then
  prefills its ``g·I`` tokens in steps shared with the other ``N − g`` decodes. When the whole wave
  takes longer than one decode phase (``⌈N·I/B⌉ ≥ O − 1`` steps) the groups catch up with each other
  and every cycle is a wave again.

Mean TTFT over the run = ``(wave + (W − 1)·steady)/W`` plus the per-request engine overhead; the
percentiles are those of the mixture (each wave prompt weighs 1/(W·N), the steady value (W−1)/W).
``W`` is the benchmark's protocol, not an engine property: the calibration fits it (``bench_waves``)
because the silicon table does not record ``num_prompts``; ``W = ∞`` is the steady state.
With data-parallel attention ``B`` is the instance's ``step_tokens``, every rank's budget together
(each rank schedules its own clients: ``Deployment.seq_cap``).
Sources: vLLM/SGLang chunked-prefill scheduling (FCFS, token budget per step): vLLM docs
"Optimization and Tuning: chunked prefill"; SGLang server arguments ``--chunked-prefill-size``.
"""

from __future__ import annotations

import math

import numpy as np

from planner.serving.prefill_time import chunked_prefill_s


def closed_loop_ttft_s(inst, clients: float, waves: float, percentiles: tuple[float, ...]) -> dict[str, float]:
    """Mean and percentiles of TTFT (s) over a closed-loop run of ``clients`` on ``inst`` (a colocated
    instance model) with ``waves`` prompts per client, before the engine's per-request overhead."""
    dep = inst.dep
    n = max(float(clients), 1.0)
    isl, osl = float(inst.size.isl), float(inst.size.osl)
    budget = max(float(dep.step_tokens), 1.0)  # every data-parallel attention rank's budget together
    group = min(max(math.floor(budget / isl), 1.0), n)
    t_step = float(inst.step_s(n))
    steady = t_step + float(chunked_prefill_s(dep, group * isl, concurrency=max(n - group, 0.0),
                                              context=isl + osl / 2.0, spread=True))
    wave_tokens = min(budget, n * isl)
    t_wave_step = float(chunked_prefill_s(dep, wave_tokens, spread=True))
    k = np.arange(1, int(round(n)) + 1, dtype=float)
    wave = np.ceil(k * isl / budget - 1e-9) * t_wave_step
    if math.ceil(n * isl / budget) >= osl - 1:  # the wave outlasts a decode phase: every cycle is a wave
        steady_vals = wave
    else:
        steady_vals = np.array([steady])
    w = max(float(waves), 1.0)
    share_wave = 1.0 / w if math.isfinite(w) else 0.0
    values = np.concatenate([wave, steady_vals])
    weights = np.concatenate([np.full(wave.size, share_wave / wave.size),
                              np.full(steady_vals.size, (1.0 - share_wave) / steady_vals.size)])
    out = {"mean": float(np.sum(values * weights))}
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    for p in percentiles:
        i = int(np.searchsorted(cum, p / 100.0 - 1e-12))
        out[f"p{p:g}"] = float(values[order][min(i, values.size - 1)])
    return out
