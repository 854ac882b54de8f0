"""Speculative decoding and prefix caching: the counting rule by hand, the verify step's cost, the
serving effects (TPOT, capacity, prefill time), the simulator's agreement, scenario keys and flags."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from planner.deployment import make_deployment
from planner.errors import PlannerError
from planner.perf.shape import decode_shape
from planner.perf.spec_step import draft_pass_s, spec_step_s, verify_shape
from planner.perf.step import step_time
from planner.profile import EngineSettings
from planner.scenario import parse_scenario
from planner.serving.instance import RequestSize
from planner.serving.prefill_time import chunked_prefill_s
from planner.serving.roles import instance_model
from planner.serving.simulate import run_simulation
from planner.speculative import Speculative, tokens_per_step

MODEL, GPU = "llama-3.1-70b", "H100-SXM"
EAGLE = Speculative("eagle", 3, 0.7)


def dep(**settings):
    return make_deployment(MODEL, GPU, tp=4, settings=EngineSettings(**settings))


def test_tokens_per_step_by_hand():
    # (1 - a^(k+1)) / (1 - a): k=3, a=0.7 -> (1 - 0.2401)/0.3 = 2.533; k=1, a=0.85 -> 1.85 (DeepSeek-V3 MTP)
    assert tokens_per_step(3, 0.7) == pytest.approx(2.533, abs=1e-9)
    assert tokens_per_step(1, 0.85) == pytest.approx(1.85)
    assert tokens_per_step(4, 1.0) == 5.0 and tokens_per_step(4, 0.0) == 1.0
    # 1 + sum of a^j, j = 1..k (accepted prefix plus the target's own token)
    assert tokens_per_step(5, 0.6) == pytest.approx(1 + sum(0.6**j for j in range(1, 6)))


def test_verify_step_reads_the_kv_once_and_computes_every_position():
    d = dep()
    plain = decode_shape(32, 4000)
    ver = step_time(d.model, d.accelerator, d.parallel, d.precision, verify_shape(plain, 4), d.eff, decode_queries=4.0)
    one = step_time(d.model, d.accelerator, d.parallel, d.precision, plain, d.eff)
    att_v = next(t.op for t in ver.ops if t.op.name == "attention_decode")
    att_1 = next(t.op for t in one.ops if t.op.name == "attention_decode")
    assert att_v.bytes == pytest.approx(att_1.bytes)  # KV read once per sequence
    assert att_v.flops == pytest.approx(4 * att_1.flops)  # every query attends
    qkv_v = next(t.op for t in ver.ops if t.op.name == "qkv_proj")
    qkv_1 = next(t.op for t in one.ops if t.op.name == "qkv_proj")
    assert qkv_v.flops == pytest.approx(4 * qkv_1.flops)  # GEMMs see batch x (k + 1) tokens


def test_tpot_is_verify_plus_drafts_over_tokens_per_step():
    """Decode-only TPOT at concurrency C: (t_verify + k * t_draft) / E, from the perf functions by hand."""
    d = dep(speculative=EAGLE)
    inst = instance_model(d, "decode", RequestSize(2000, 300), open_loop=False)
    c = 16.0
    shape = decode_shape(c, 2000 + 150)
    t_verify = step_time(d.model, d.accelerator, d.parallel, d.precision, verify_shape(shape, 4), d.eff,
                         decode_queries=4.0).step_s
    t_draft = draft_pass_s(d.model, d.accelerator, d.parallel, d.precision, c, 2150.0, d.eff, EAGLE)
    e = (1 - 0.7**4) / 0.3
    assert inst.step_s(c) == pytest.approx((t_verify + 3 * t_draft) / e, rel=1e-9)
    assert spec_step_s(d.model, d.accelerator, d.parallel, d.precision, shape, d.eff, EAGLE) == \
        pytest.approx(t_verify + 3 * t_draft)


def test_acceptance_07_lowers_tpot_and_raises_decode_capacity():
    size = RequestSize(2000, 300)
    base = instance_model(dep(), "decode", size)
    spec = instance_model(dep(speculative=EAGLE), "decode", size)
    # at light load decode is bound by reading the weights: the verify step costs about one step, so TPOT
    # falls by about E = 2.53 less the verify and draft extra (within [E/1.5, E])
    ratio = base.step_s(1.0) / spec.step_s(1.0)
    assert 2.533 / 1.5 < ratio < 2.533
    assert spec.goodput_rps(None, 0.02, 99.0) > 1.3 * base.goodput_rps(None, 0.02, 99.0)
    assert spec.max_rps > base.max_rps


def test_capacity_never_falls_as_acceptance_rises():
    size = RequestSize(1000, 400)
    caps = [instance_model(dep(speculative=Speculative("mtp", 2, a)), "decode", size).goodput_rps(None, 0.03, 99.0)
            for a in (0.3, 0.5, 0.7, 0.9)]
    assert all(b >= a for a, b in zip(caps, caps[1:]))


def test_prefix_hit_half_cuts_prefill_about_in_half():
    base, hit = dep(), dep(prefix_cache_hit=0.5)
    for isl in (2000.0, 8000.0):
        ratio = chunked_prefill_s(hit, isl) / chunked_prefill_s(base, isl)
        assert 0.4 < ratio < 0.6, (isl, ratio)
    size = RequestSize(4000, 200)
    p0, p1 = instance_model(base, "prefill", size), instance_model(hit, "prefill", size)
    assert 1.6 < p1.max_rps / p0.max_rps < 2.5
    # KV rule: a request holds (1 - h) I + O/2 tokens of its own
    # (mean occupancy: offline; open loop adds room for the spread, planner.serving.instance.Instance.caps)
    c0, c1 = (instance_model(d, "colocated", size, open_loop=False) for d in (base, hit))
    assert c1.caps["kv_capacity"] == pytest.approx(c0.caps["kv_capacity"] * (4000 + 100) / (2000 + 100))


def test_simulator_honours_both():
    for settings in ({"speculative": EAGLE}, {"prefix_cache_hit": 0.5}):
        d = dep(**settings)
        est = instance_model(d, "colocated", RequestSize(2000, 300))
        lat = est.latency(1.0)
        sim = run_simulation(d, isl=2000, osl=300, rate_rps=1.0, n_requests=300, seed=1)
        assert sim.tpot_s["mean"] == pytest.approx(lat.tpot_s["mean"], rel=0.1)
        assert sim.ttft_s["mean"] == pytest.approx(lat.ttft_s["mean"], rel=0.15)
    base = run_simulation(dep(), isl=2000, osl=300, rate_rps=1.0, n_requests=300, seed=1)
    spec = run_simulation(dep(speculative=EAGLE), isl=2000, osl=300, rate_rps=1.0, n_requests=300, seed=1)
    assert spec.tpot_s["mean"] < base.tpot_s["mean"] / 2


BASE = {"model": MODEL, "workload": {"rate_rps": 5, "input": 1000, "output": 200}, "slo": {"ttft_s": 1.0}}


def test_scenario_keys():
    sc = parse_scenario({**BASE, "speculative": {"method": "MTP", "draft_tokens": 1, "acceptance": 0.85},
                         "workload": {**BASE["workload"], "prefix_cache_hit": 0.5}})
    assert sc.engine_settings.speculative == Speculative("mtp", 1, 0.85)
    assert sc.engine_settings.prefix_cache_hit == 0.5
    assert parse_scenario({**BASE, "speculative": {"method": "none"}}).engine_settings.speculative is None
    bad = [({"speculative": {"method": "mtp", "draft_tokens": 2}}, "speculative.acceptance"),
           ({"speculative": {"method": "medusa", "draft_tokens": 2, "acceptance": 0.7}}, "speculative.method"),
           ({"speculative": {"method": "mtp", "draft_tokens": 0, "acceptance": 0.7}}, "speculative.draft_tokens"),
           ({"speculative": {"method": "mtp", "draft_tokens": 2, "acceptance": 1.2}}, "speculative.acceptance"),
           ({"speculative": {"method": "draft", "draft_tokens": 2, "acceptance": 0.7}}, "speculative.draft_model"),
           ({"speculative": {"method": "mtp", "draft_tokens": 2, "acceptence": 0.7}}, "did you mean"),
           ({"speculative": "eagle"}, "speculative"),
           ({"workload": {**BASE["workload"], "prefix_cache_hit": 1.0}}, "workload.prefix_cache_hit"),
           ({"engine_settings": {"prefix_cache_hit": 0.5}}, "engine_settings.prefix_cache_hit")]
    for extra, field in bad:
        with pytest.raises(PlannerError, match=field):
            parse_scenario({**BASE, **extra})


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["planner", *args], capture_output=True, text=True, timeout=120)


def test_estimate_flags_in_the_console_script():
    common = ["estimate", "-m", MODEL, "-g", GPU, "--tp", "4", "--isl", "2000", "--osl", "300", "--rate", "1",
              "--json"]
    base = json.loads(run(*common).stdout)
    spec = json.loads(run(*common, "--spec-method", "eagle", "--spec-tokens", "3", "--spec-acceptance", "0.7").stdout)
    hit = json.loads(run(*common, "--prefix-hit", "0.5").stdout)
    assert spec["tpot_s"]["mean"] < base["tpot_s"]["mean"] / 2
    assert any("2.53 tokens per step" in n for n in spec["notes"])
    assert 0.4 < hit["ttft_s"]["mean"] / base["ttft_s"]["mean"] < 0.65
    for extra, field in ((["--spec-method", "eagle", "--spec-acceptance", "0.7"], "--spec-tokens"),
                         (["--spec-tokens", "2"], "--spec-method"), (["--prefix-hit", "1.5"], "--prefix-hit"),
                         (["--spec-method", "draft", "--spec-tokens", "2", "--spec-acceptance", "0.7",
                           "--spec-draft-model", "qwen3-8b"], "speculative.draft_model")):
        res = run(*common, *extra)
        assert res.returncode == 2, (extra, res.stderr)
        assert field in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_mtp_on_an_moe_model_times_one_moe_layer():
    d = make_deployment("deepseek-v3", "H200-SXM", tp=8, precision="fp8",
                        settings=EngineSettings(speculative=Speculative("mtp", 1, 0.85)))
    t_draft = draft_pass_s(d.model, d.accelerator, d.parallel, d.precision, 64.0, 3000.0, d.eff,
                           d.settings.speculative)
    t_full = step_time(d.model, d.accelerator, d.parallel, d.precision, decode_shape(64.0, 3000.0), d.eff)
    # one of 61 layers plus embedding and head: a small share of the target's step, but more than nothing
    assert 0.0 < t_draft < 0.2 * (t_full.step_s - d.eff.step_overhead_s)
    assert np.isfinite(instance_model(d, "decode", RequestSize(3000, 500)).max_rps)
