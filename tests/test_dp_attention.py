"""Data-parallel attention: every attention rank runs its own scheduler, so an instance of ``tp`` ranks
holds ``tp`` times the engine's running-sequence cap and token budget, in the analytic model, the
simulator, ``planner memory`` and the emitted launch flags alike."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from planner.api import deployment
from planner.emit.engines import GroupSpec, rank_caps, sglang, trtllm, vllm
from planner.perf.memory import memory_plan
from planner.profile import EngineSettings
from planner.serving.instance import RequestSize
from planner.serving.roles import instance_model
from planner.serving.simulate import simulate_colocated

MODEL, GPU, TP = "deepseek-v3", "h200-sxm", 8


def _dep(dp_attn: bool, settings: EngineSettings | None = None):
    return deployment(MODEL, GPU, tp=TP, ep=TP, precision="fp8", engine="sglang", dp_attn=dp_attn, settings=settings)


def test_caps_scale_by_the_attention_ranks():
    size = RequestSize(2000.0, 200.0)
    dpa, tpa = instance_model(_dep(True), "colocated", size), instance_model(_dep(False), "colocated", size)
    assert _dep(True).attn_ranks == TP and _dep(False).attn_ranks == 1
    assert dpa.caps["max_seqs"] == TP * tpa.caps["max_seqs"] == TP * _dep(False).eff.max_seqs
    assert dpa.caps["token_budget"] == pytest.approx(TP * tpa.caps["token_budget"])
    # KV capacity is per-rank memory already: not scaled again
    assert dpa.caps["kv_capacity"] > tpa.caps["kv_capacity"]
    d = _dep(True)
    mp = memory_plan(d.model, d.accelerator, d.parallel, d.precision, d.eff, engine=d.engine)
    assert (mp.attention_ranks, mp.max_seqs_per_rank, mp.seq_cap) == (TP, int(d.eff.max_seqs), TP * int(d.eff.max_seqs))


def test_prefill_role_batches_whole_prompts_on_every_rank():
    size = RequestSize(1000.0, 100.0)
    dpa, tpa = instance_model(_dep(True), "prefill", size), instance_model(_dep(False), "prefill", size)
    assert dpa.prefill_batch == TP * tpa.prefill_batch


@pytest.mark.parametrize("dp_attn", [False, True])
def test_simulator_and_analytic_agree_on_the_cap(dp_attn):
    """A burst of short prompts with long answers fills the running set to the sequence cap: the
    simulator's mean decode batch sits at the analytic cap (4 per rank here), not above it."""
    settings = EngineSettings(max_seqs=4, token_budget=4096)
    d = _dep(dp_attn, settings)
    inst = instance_model(d, "colocated", RequestSize(64.0, 400.0))
    cap = inst.max_concurrency
    assert inst.concurrency_bound == "max_seqs" and cap == (TP if dp_attn else 1) * 4
    n = int(6 * cap)
    res = simulate_colocated(d, np.zeros(n), np.full(n, 64), np.full(n, 400), max_requests=n)
    assert res.n_requests == n
    assert 0.8 * cap <= res.mean_decode_batch <= cap + 1e-9


def _group(dp_attn: bool, engine: str) -> GroupSpec:
    return GroupSpec(name="g", accelerator="H200-SXM", role="colocated", tp=TP, pp=1, ep=TP, dp_attn=dp_attn,
                     instances=1, engine=engine, precision="fp8", kv_dtype="fp8", token_budget=4096, max_seqs=256,
                     memory_fraction=0.9)


def _arg(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_emitted_flags_state_each_engines_per_rank_rule():
    # vLLM: one engine core per DP rank with the flags as given -> the per-rank values
    v = vllm(_group(True, "vllm"), "m", 1, TP).argv
    assert _arg(v, "--data-parallel-size") == str(TP)
    assert (_arg(v, "--max-num-seqs"), _arg(v, "--max-num-batched-tokens")) == ("256", "4096")
    # TensorRT-LLM: max_batch_size / max_num_tokens apply per rank under enable_attention_dp
    t = trtllm(_group(True, "trtllm"), "m", 1, TP, 0.8).argv
    assert (_arg(t, "--max_batch_size"), _arg(t, "--max_num_tokens")) == ("256", "4096")
    # SGLang: instance totals that it divides by --dp-size -> dp times the per-rank values
    s = sglang(_group(True, "sglang"), "m", 1, TP).argv
    assert _arg(s, "--dp-size") == str(TP)
    assert (_arg(s, "--max-running-requests"), _arg(s, "--chunked-prefill-size")) == (str(TP * 256), str(TP * 4096))
    # without DP attention every engine takes the value as planned
    s = sglang(_group(False, "sglang"), "m", 1, TP).argv
    assert (_arg(s, "--max-running-requests"), _arg(s, "--chunked-prefill-size")) == ("256", "4096")
    assert rank_caps(_group(False, "sglang"), "sglang") == (4096, 256)


@pytest.mark.skipif(shutil.which("planner") is None, reason="console script not installed")
def test_memory_and_estimate_json_report_the_instance_cap():
    base = ["--model", MODEL, "--gpu", GPU, "--tp", str(TP), "--ep", str(TP), "--precision", "fp8", "-e", "sglang"]
    runs = {}
    for dpa in (True, False):
        flags = [*base, "--dp-attn"] if dpa else base
        proc = subprocess.run(["planner", "memory", *flags, "--json"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        runs[dpa] = json.loads(proc.stdout)
    assert runs[True]["seq_cap"] == TP * runs[False]["seq_cap"] == TP * runs[True]["max_seqs_per_rank"]
    assert runs[True]["attention_ranks"] == TP and runs[False]["attention_ranks"] == 1
    proc = subprocess.run(["planner", "estimate", *base, "--dp-attn", "--isl", "100", "--osl", "4000", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["memory"]["seq_cap"] == TP * out["memory"]["max_seqs_per_rank"]
    assert out["concurrency"] > out["memory"]["max_seqs_per_rank"]  # past one rank's cap
