"""Roofline operators and the memory model: hand-worked figures and physical properties."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.api import deployment, memory, roofline
from planner.errors import PlannerError
from planner.perf.ops import expected_experts_touched, stage_ops
from planner.perf.shape import decode_shape, prefill_shape
from planner.perf.step import step_time


def test_70b_bf16_does_not_fit_one_80gb_gpu_but_fits_tp4():
    one = memory("llama-3.1-70b", "H100-SXM", tp=1)
    assert not one.fits
    assert "exceed" in one.reason
    four = memory("llama-3.1-70b", "H100-SXM", tp=4)
    assert four.fits
    # 70.55e9 params · 2 B / 4 GPUs ≈ 35.3 GB of weights per GPU; 80 GiB · 0.9 usable ≈ 77.3 GB
    assert four.weights_bytes_per_gpu == pytest.approx(70.55e9 * 2 / 4, rel=0.01)
    assert four.kv_bytes_per_token_per_gpu == 327_680 / 4
    assert 30 * 2**30 < four.kv_room_bytes_per_gpu < 40 * 2**30
    assert four.max_kv_tokens == int(four.kv_room_bytes_per_gpu // (327_680 / 4))
    assert "GiB per GPU for KV cache" in four.reason
    a100 = memory("llama-2-70b", "A100-SXM-80GB", tp=4)
    assert a100.fits


def test_fp8_halves_weights_and_kv():
    bf = memory("llama-3.1-70b", "H100-SXM", tp=2)
    f8 = memory("llama-3.1-70b", "H100-SXM", tp=2, precision="fp8", kv_dtype="fp8")
    assert f8.kv_bytes_per_token == bf.kv_bytes_per_token / 2
    assert f8.weights_bytes_per_gpu < 0.55 * bf.weights_bytes_per_gpu


def test_mla_kv_is_replicated_across_tp():
    m = memory("deepseek-v3", "H200-SXM", tp=8, precision="fp8")
    assert m.kv_bytes_per_token == 70_272
    assert m.kv_bytes_per_token_per_gpu == 70_272  # latents are not split by head


def test_expected_experts_touched():
    # E(1-(1-k/E)^B): one token touches exactly k experts; a huge batch touches all E
    assert expected_experts_touched(8, 2, 1) == pytest.approx(2)
    assert expected_experts_touched(256, 8, 1) == pytest.approx(8)
    assert expected_experts_touched(8, 2, 2) == pytest.approx(8 * (1 - 0.75**2))
    assert expected_experts_touched(256, 8, 10_000) == pytest.approx(256)


def test_decode_reads_weights_once_per_step():
    # Llama-3.1-8B bf16 decode at batch 1: HBM bytes ≈ every weight once (16.1 GB), except the
    # input embedding table, of which only the looked-up row is read (1.05 GB less)
    d = deployment("llama-3.1-8b", "H100-SXM")
    ops = stage_ops(d.model, d.parallel, d.precision, decode_shape(1, 1), "bf16", "bf16")
    total = sum(o.bytes for o in ops)
    expected = (d.model.params - d.model.vocab * d.model.hidden) * 2
    assert total == pytest.approx(expected, rel=0.01)


def test_prefill_flops_about_2_params_tokens_plus_attention():
    d = deployment("llama-3.1-8b", "H100-SXM")
    n = 2048
    ops = stage_ops(d.model, d.parallel, d.precision, prefill_shape(1, n), "bf16", "bf16")
    gemm = sum(o.flops for o in ops if o.kind == "gemm" and o.name != "lm_head")
    non_emb = d.model.params - d.model.embedding_params
    assert gemm == pytest.approx(2 * non_emb * n, rel=0.01)
    attn = sum(o.flops for o in ops if o.kind == "attention")
    # causal: 4·L·n_q·d·n(n+1)/2
    assert attn == pytest.approx(4 * 32 * 32 * 128 * n * (n + 1) / 2, rel=1e-9)


def test_moe_decode_reads_only_touched_experts():
    d = deployment("mixtral-8x7b", "H100-SXM", tp=2)
    one = stage_ops(d.model, d.parallel, d.precision, decode_shape(1, 512), "bf16", "bf16")
    many = stage_ops(d.model, d.parallel, d.precision, decode_shape(256, 512), "bf16", "bf16")
    e1 = next(o for o in one if o.name == "moe_experts").bytes
    e256 = next(o for o in many if o.name == "moe_experts").bytes
    assert e256 / e1 == pytest.approx(8 / 2, rel=0.05)  # 2 of 8 experts vs all 8


def test_tp_adds_two_all_reduces_per_layer():
    d = deployment("llama-3.1-70b", "H100-SXM", tp=4)
    ops = stage_ops(d.model, d.parallel, d.precision, decode_shape(8, 100), "bf16", "bf16")
    ar = next(o for o in ops if o.name == "tp_all_reduce")
    assert ar.launches == 2 * 80 and ar.comm_bytes == 8 * 8192 * 2


def test_pp_raises_throughput_not_latency():
    one = roofline("llama-3.1-70b", "H100-SXM", phase="prefill", batch=1, context=2048, tp=4)
    two = roofline("llama-3.1-70b", "H100-SXM", phase="prefill", batch=1, context=2048, tp=4, pp=2)
    assert two.step_s >= 0.95 * one.step_s


def test_ampere_runs_fp8_weights_in_bf16():
    st_ = roofline("llama-3.1-8b", "A100-SXM-80GB", precision="fp8", batch=512, context=512)
    assert st_.gemm_dtype == "bf16"
    h = roofline("llama-3.1-8b", "H100-SXM", precision="fp8", batch=512, context=512)
    assert h.gemm_dtype == "fp8"


def test_tp_must_divide_heads():
    with pytest.raises(PlannerError, match="does not divide"):
        deployment("llama-3.1-70b", "H100-SXM", tp=3)
    # a TP group fits one scale-up domain or fills whole ones (TP across two 8-GPU nodes is a candidate)
    assert deployment("llama-3.1-70b", "L4", tp=16).parallel.tp == 16
    with pytest.raises(PlannerError, match="without filling whole domains"):
        deployment("deepseek-r1", "H200-SXM", tp=12, ep=12, dp_attn=True)


@settings(max_examples=40, deadline=None)
@given(bw=st.floats(1.0, 4.0), fl=st.floats(1.0, 4.0), batch=st.integers(1, 256), ctx=st.integers(1, 8192),
       phase=st.sampled_from(["prefill", "decode"]))
def test_more_bandwidth_or_flops_never_slows_a_step(bw, fl, batch, ctx, phase):
    d = deployment("llama-3.1-8b", "H100-SXM")
    faster = replace(d.accelerator, mem_bw_bytes_per_s=d.accelerator.mem_bw_bytes_per_s * bw,
                     peak_flops={k: v * fl for k, v in d.accelerator.peak_flops.items()})
    shape = prefill_shape(batch, ctx) if phase == "prefill" else decode_shape(batch, ctx)
    base = step_time(d.model, d.accelerator, d.parallel, d.precision, shape, d.eff).step_s
    fast = step_time(d.model, faster, d.parallel, d.precision, shape, d.eff).step_s
    assert fast <= base * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 512), ctx=st.integers(1, 30000), extra=st.integers(1, 30000))
def test_longer_context_never_shortens_decode(batch, ctx, extra):
    d = deployment("llama-3.1-8b", "H100-SXM")
    a = step_time(d.model, d.accelerator, d.parallel, d.precision, decode_shape(batch, ctx), d.eff).step_s
    b = step_time(d.model, d.accelerator, d.parallel, d.precision, decode_shape(batch, ctx + extra), d.eff).step_s
    assert b >= a


def test_sliding_window_prefill_pairs_hand_worked():
    # Mistral-7B v0.1: every layer slides over W = 4096 keys. A 32,000-token prompt has
    # Σ_j min(j, W) = W(W+1)/2 + (L − W)·W query-key pairs per head, not L(L+1)/2.
    st_ = roofline("mistral-7b", "H100-SXM", phase="prefill", batch=1, context=32000)
    attn = next(o for o in st_.ops if o.op.name == "attention_prefill").op.flops
    w, n = 4096, 32000
    pairs = w * (w + 1) / 2 + (n - w) * w
    assert attn == pytest.approx(4 * 32 * 128 * 32 * pairs, rel=1e-6)


def test_uneven_pipeline_stage_holds_the_extra_layer():
    # DeepSeek-V3 has 61 layers: at PP2 the fuller stage has 31 of them
    one = memory("deepseek-v3", "B200", tp=8, precision="fp8")
    two = memory("deepseek-v3", "B200", tp=8, pp=2, precision="fp8")
    assert two.kv_bytes_per_token_per_gpu == pytest.approx(one.kv_bytes_per_token_per_gpu * 31 / 61)


def test_pp_over_two_nodes_keeps_tp_all_reduce_on_nvlink():
    """TP8 x PP2 on 8-GPU H100 nodes: the TP all-reduce stays on NVLink, only the PP hand-off goes
    over the network, so one request's step is no shorter than TP8 x PP1 and within 1.3x of it."""
    from planner.api import roofline
    from planner.hardware import default_hardware
    from planner.perf.roofline import link_bw_bytes_per_s

    acc = default_hardware().get("H100-SXM")
    assert acc.scaleup_domain == 8
    assert link_bw_bytes_per_s(acc, 8, 16, "all_reduce") == acc.scaleup_bw_bytes_per_s
    assert link_bw_bytes_per_s(acc, 2, 16, "p2p") == acc.scaleout_bw_bytes_per_s
    assert link_bw_bytes_per_s(acc, 2, 8, "p2p") == acc.scaleup_bw_bytes_per_s
    for phase, batch, context in (("decode", 1, 1024), ("decode", 1, 8192), ("prefill", 1, 4096)):
        one = roofline("llama-3.1-70b", "H100-SXM", phase=phase, batch=batch, context=context, tp=8, pp=1)
        two = roofline("llama-3.1-70b", "H100-SXM", phase=phase, batch=batch, context=context, tp=8, pp=2)
        assert one.step_s <= two.step_s <= 1.3 * one.step_s, (phase, one.step_s, two.step_s)
        ar = {s.pp: next(t for t in s.ops if t.op.name == "tp_all_reduce") for s in (one, two)}
        # same per-layer all-reduce time: the layers split over two stages, the link does not change
        per_layer = {pp: t.comm_s / t.op.launches for pp, t in ar.items()}
        assert per_layer[2] == pytest.approx(per_layer[1], rel=1e-9)
