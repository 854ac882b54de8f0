"""Operators of one transformer step, per GPU: FLOPs, HBM bytes and communication bytes.

Counts are per GPU of a TP group, summed over the layers of one pipeline stage, for one
(micro-)batch ``StepShape``. Formulas (h hidden, d head dim, n_q/n_kv heads, t = TP,
T new tokens, w/a/c bytes per weight/activation/KV element):

- projection GEMMs: FLOPs ``2·T·K·N``, bytes ``K·N·w + T·(K+N)·a`` with N or K split by TP;
- attention: FLOPs ``2·(d_qk + d_v)·n_q/t·Σq(p+(q+1)/2)`` (causal pairs), bytes = cached
  KV read ``Σ(p+q)·kv_per_token_per_gpu`` + Q/O traffic;
- MLA decode uses weight absorption (DeepSeek-V2 §2.1.4): attention in the latent space,
  ``2·(2·r_kv + d_rope)`` FLOPs per query-key pair per head plus the absorbed up-projections;
  MLA prefill expands latents with ``kv_b`` and runs ordinary attention;
- MoE: a batch of T tokens touches ``E·(1 − (1 − k/E)^T)`` distinct experts (expected,
  uniform routing), so decode reads only those experts' weights; an EP rank holds ``⌈E/ep⌉``
  expert slots and the busiest rank's ``L_max`` assignments set the pace (``moe_ops`` and
  ``planner.perf.moe``): FLOPs ``2·L_max·P_expert/moe_tp`` (``2·T·k·P_expert/t`` when balanced),
  grouped-GEMM efficiency scaled by the expert width, permute/unpermute ``2·2·L_max·h·a`` bytes;
- TP: two all-reduces per layer of ``T·h·a`` bytes; EP: all-to-all dispatch and combine of
  ``L_max·h·a·(ep−1)/ep`` bytes each (what the busiest rank receives; ``T·k·h·a·(ep−1)/ep²`` when
  balanced); PP: a hand-off of ``T·h·a`` bytes per stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.dtypes import Precision
from planner.models import ModelArch
from planner.parallel import Parallel
from planner.perf.moe import busiest_rank_load, expert_slots, grouped_width_eff
from planner.perf.shape import StepShape, anywhere


@dataclass(frozen=True)
class Op:
    """One operator summed over the layers of a stage, per GPU.

    ``kind`` is gemm | attention | memory | comm. ``m`` is the GEMM row count that sets
    its efficiency (tokens per expert for MoE). ``launches`` counts kernels (for launch
    overhead). Comm ops carry ``comm_bytes`` (per collective), ``group`` and ``collective``.
    ``eff_scale`` multiplies the compute efficiency (grouped GEMMs of narrow experts); ``grouped``
    marks an MoE grouped GEMM, whose compute and memory efficiencies the engine's ``moe_eff`` scales. ``k`` is a
    GEMM's reduction depth (0: not modelled), which sets how well its per-tile fixed cost is amortised.
    """

    name: str
    kind: str
    flops: float
    bytes: float
    dtype: str
    m: float = 0.0
    launches: float = 1.0
    comm_bytes: float = 0.0
    group: int = 1
    collective: str = ""
    eff_scale: float = 1.0
    k: float = 0.0
    grouped: bool = False

    @property
    def intensity(self) -> float:
        """FLOPs per HBM byte."""
        return self.flops / self.bytes if self.bytes else float("inf")


def expected_experts_touched(n_experts: int, top_k: int, tokens: float) -> float:
    """Distinct experts a batch of ``tokens`` routes to, ``E·(1 − (1 − k/E)^T)`` (uniform routing)."""
    return n_experts * (1.0 - (1.0 - top_k / n_experts) ** tokens)


def moe_ops(model: ModelArch, par: Parallel, prec: Precision, tokens: float, layers: float,
            gemm_dtype: str) -> list[Op]:
    """Routed experts of one MoE layer stack on the busiest EP rank (``planner.perf.moe``): its
    ``L_max`` assignments set the grouped GEMM's FLOPs ``2·L_max·P_expert/moe_tp``; it reads the
    weights of the experts its ``⌈E/ep⌉`` slots touch; permute and unpermute move ``2·L_max·h·a``
    bytes each; the dispatch/combine all-to-all carries what the busiest rank receives,
    ``L_max·h·a·(ep−1)/ep`` bytes each way."""
    E, k, f, h, a = model.n_experts, model.top_k, model.moe_intermediate, model.hidden, prec.act_bytes
    mats = model.ffn_mats
    slots = expert_slots(E, par.ep)
    load = busiest_rank_load(tokens, k, par.ep, slots)
    touched = slots * (1.0 - (1.0 - k / E) ** tokens)  # distinct experts of one rank's slots touched
    expert_w = model.expert_params / par.moe_tp
    width_eff = grouped_width_eff(f / par.moe_tp)
    ops = [Op("moe_experts", "gemm",
              flops=2.0 * load * expert_w * layers,
              bytes=(touched * expert_w * prec.weight_bytes + load * (h + mats * f / par.moe_tp) * a) * layers,
              dtype=gemm_dtype, m=load / np.maximum(touched, 1e-30), launches=2 * layers, eff_scale=width_eff,
              k=h, grouped=True),  # the gate/up depth; the down projection's (f/moe_tp) is what width_eff prices
           Op("moe_permute", "memory", 0.0, 2 * 2.0 * load * h * a * layers, gemm_dtype, launches=2 * layers)]
    if par.ep > 1:
        a2a = load * h * a * (par.ep - 1) / par.ep
        ops.append(Op("ep_all_to_all", "comm", 0.0, 0.0, gemm_dtype, launches=2 * layers,
                      comm_bytes=a2a, group=par.ep, collective="all_to_all"))
    return ops


def dp_moe_by_all_to_all(a2a_bytes, gather_bytes, ranks: int) -> bool:
    """Whether data-parallel-attention ranks reach fully expert-parallel MoE layers by all-to-all
    (dispatch + combine, ``2·a2a_bytes`` per GPU: DeepEP, CloudMatrix) rather than by gathering every
    rank's tokens and reduce-scattering the result (``2·(n−1)/n·gather_bytes``: TensorRT-LLM's default,
    SGLang without DeepEP): engines pick the one that moves fewer bytes (all-to-all wins at wide EP,
    where each rank receives only ~k/ep of the tokens)."""
    return anywhere(2.0 * a2a_bytes < 2.0 * (ranks - 1) / ranks * gather_bytes)


def kv_heads_per_rank(model: ModelArch, tp: int) -> float:
    """KV heads each TP rank stores: n_kv/t, or 1 (replicated) when t > n_kv."""
    return max(1.0, model.n_kv_heads / tp)


def kv_bytes_per_token_per_gpu(model: ModelArch, par: Parallel, kv_bytes: float,
                               context: int | None = None) -> float:
    """Cached KV bytes per token on one GPU: layers/pp × per-rank share.

    MLA latents cannot be split by head, so every TP rank holds the whole latent cache; with
    data-parallel attention (SGLang/TensorRT-LLM "attention DP", as DeepSeek deployments run) each
    rank caches its own sequences whole, so the instance's share per GPU is 1/tp of a token.
    """
    whole = model.kv_bytes_per_token(kv_bytes, context)
    stage = math.ceil(model.n_layers / par.pp) / model.n_layers  # the fullest pipeline stage
    if par.dp_attn:  # each rank caches whole tokens of its own 1/tp of the sequences
        return whole * stage / par.tp
    if model.is_mla:
        return whole * stage
    return whole * kv_heads_per_rank(model, par.tp) / model.n_kv_heads * stage


def _gemm(name: str, tokens: float, k: float, n: float, layers: float, prec: Precision, dtype: str,
          weight_bytes: float | None = None) -> Op:
    wb = prec.weight_bytes if weight_bytes is None else weight_bytes
    return Op(
        name=name,
        kind="gemm",
        flops=2.0 * tokens * k * n * layers,
        bytes=(k * n * wb + tokens * (k + n) * prec.act_bytes) * layers,
        dtype=dtype,
        m=tokens,
        launches=layers,
        k=k,
    )


def attention_ops(model: ModelArch, prec: Precision, shape: StepShape, t: int, layers: float, gemm_dtype: str,
                  attn_dtype: str) -> list[Op]:
    """Attention block of one GPU: projections, attention and o_proj for ``shape`` split over ``t``
    tensor-parallel ranks (``t = 1`` and a 1/dp share of the sequences under data-parallel attention)."""
    h = model.hidden
    a = prec.act_bytes
    T = shape.new_tokens
    ops: list[Op] = []
    heads = model.n_heads / t
    P, D = shape.prefill_tokens, shape.decode_seqs
    if model.is_mla:
        r_q, r_kv, rope = model.q_lora_rank, model.kv_lora_rank, model.qk_rope_head_dim
        nope, dv = model.qk_nope_head_dim, model.v_head_dim
        if r_q:
            ops.append(_gemm("q_a_proj", T, h, r_q, layers, prec, gemm_dtype))
            ops.append(_gemm("q_b_proj", T, r_q, heads * (nope + rope), layers, prec, gemm_dtype))
        else:
            ops.append(_gemm("q_proj", T, h, heads * (nope + rope), layers, prec, gemm_dtype))
        ops.append(_gemm("kv_a_proj", T, h, r_kv + rope, layers, prec, gemm_dtype))
        kv_tok_bytes = (r_kv + rope) * prec.kv_bytes
        if anywhere(P > 0):
            # prefill: expand the latents of the context with kv_b, then ordinary attention
            ops.append(_gemm("kv_b_proj", shape.prefill_kv_tokens, r_kv, heads * (nope + dv), layers, prec,
                             gemm_dtype))
            ops.append(Op("attention_prefill", "attention",
                          2.0 * heads * (nope + rope + dv) * shape.prefill_pairs * layers,
                          (shape.prefill_kv_tokens * kv_tok_bytes + P * heads * (nope + rope + 2 * dv) * a)
                          * layers, attn_dtype, m=P / np.maximum(shape.prefill_seqs, 1e-9), launches=layers))
        if anywhere(D > 0):
            # decode with weight absorption: attention in the latent space
            ops.append(_gemm("mla_absorb_q", D, nope, heads * r_kv, layers, prec, gemm_dtype))
            ops.append(Op("attention_decode", "attention",
                          2.0 * heads * (2 * r_kv + rope) * shape.decode_kv_tokens * layers,
                          (shape.decode_kv_tokens * kv_tok_bytes + D * heads * (r_kv + rope + r_kv) * a)
                          * layers, attn_dtype, m=shape.decode_kv_tokens / np.maximum(D, 1e-9), launches=layers))
            ops.append(_gemm("mla_absorb_v", D, heads * r_kv, dv, layers, prec, gemm_dtype))
        out_dim = heads * dv
    else:
        d = model.head_dim
        kvh = kv_heads_per_rank(model, t)
        ops.append(_gemm("qkv_proj", T, h, (heads + 2 * kvh) * d, layers, prec, gemm_dtype))

        def window(kv_tokens: float, seqs: float) -> float:
            """Share of layer-tokens attended once sliding-window layers cap the context."""
            if not model.n_sliding_layers:
                return 1.0
            per_seq = np.maximum(kv_tokens / np.maximum(seqs, 1e-9), 1e-9)
            slide = np.minimum(per_seq, model.sliding_window) / per_seq
            return (model.n_full_attn_layers + model.n_sliding_layers * slide) / model.n_layers

        def prefill_window() -> float:
            """Share of causal query-key pairs left when sliding-window layers see only the last W keys:
            per sequence Σ_{j=p+1}^{p+q} min(j, W) against q·(p + (q+1)/2)."""
            if not model.n_sliding_layers:
                return 1.0
            seqs = np.maximum(shape.prefill_seqs, 1e-9)
            q = np.maximum(P / seqs, 1e-9)
            past = np.maximum(shape.prefill_kv_tokens / seqs - q, 0.0)
            lo, hi, win = past + 1.0, past + q, float(model.sliding_window)
            top = np.minimum(hi, win)
            ramp = np.where(lo <= win, (top * (top + 1.0) - (lo - 1.0) * lo) / 2.0, 0.0)
            flat = win * np.maximum(hi - np.maximum(lo - 1.0, win), 0.0)
            frac = (ramp + flat) / (q * (past + (q + 1.0) / 2.0))
            return (model.n_full_attn_layers + model.n_sliding_layers * frac) / model.n_layers

        kv_tok_bytes = 2 * kvh * d * prec.kv_bytes
        if anywhere(P > 0):
            w = window(shape.prefill_kv_tokens, shape.prefill_seqs)
            wp = prefill_window()
            ops.append(Op("attention_prefill", "attention", 4.0 * heads * d * shape.prefill_pairs * layers * wp,
                          (shape.prefill_kv_tokens * kv_tok_bytes * w + P * 2 * heads * d * a) * layers,
                          attn_dtype, m=P / np.maximum(shape.prefill_seqs, 1e-9), launches=layers))
        if anywhere(D > 0):
            w = window(shape.decode_kv_tokens, D)
            ops.append(Op("attention_decode", "attention", 4.0 * heads * d * shape.decode_kv_tokens * layers * w,
                          (shape.decode_kv_tokens * kv_tok_bytes * w + D * 2 * heads * d * a) * layers,
                          attn_dtype, m=shape.decode_kv_tokens / np.maximum(D, 1e-9), launches=layers))
        out_dim = heads * d
    ops.append(_gemm("o_proj", T, out_dim, h, layers, prec, gemm_dtype))

    return ops


def stage_ops(model: ModelArch, par: Parallel, prec: Precision, shape: StepShape, gemm_dtype: str,
              attn_dtype: str, first_stage: bool = True, last_stage: bool = True,
              half_dtype: str = "bf16") -> list[Op]:
    """Operators one GPU runs for ``shape`` in one pipeline stage (layers/pp of the model)."""
    t = par.tp
    h = model.hidden
    a = prec.act_bytes
    T = shape.new_tokens
    layers = float(math.ceil(model.n_layers / par.pp))  # the fullest stage sets the pace
    frac = layers / model.n_layers
    ops: list[Op] = []

    dpa = par.dp_attn and t > 1
    local = T / t if dpa else T  # tokens this GPU embeds, normalises and routes itself
    if first_stage:
        ops.append(Op("embedding", "memory", 0.0, local * h * a * 2, attn_dtype, launches=1))

    # --- attention (TP-split, or data-parallel: each GPU its own 1/tp of the sequences) -------
    if par.dp_attn:
        ops += attention_ops(model, prec, shape.scaled(float(t)), 1, layers, gemm_dtype, attn_dtype)
    else:
        ops += attention_ops(model, prec, shape, t, layers, gemm_dtype, attn_dtype)

    # --- FFN ------------------------------------------------------------------------
    mats = model.ffn_mats
    dense_layers = (model.n_layers - model.n_moe_layers) * frac
    if dense_layers:
        ops.append(_gemm("mlp_up", T, h, (mats - 1) * model.intermediate / t, dense_layers, prec, gemm_dtype))
        ops.append(_gemm("mlp_down", T, model.intermediate / t, h, dense_layers, prec, gemm_dtype))
    moe_layers = model.n_moe_layers * frac
    gather_layers = layers  # layers whose FFN input is gathered across data-parallel attention ranks
    if moe_layers:
        f = model.moe_intermediate
        ops.append(_gemm("router", local, h, model.n_experts, moe_layers, prec, half_dtype, weight_bytes=a))
        moe = moe_ops(model, par, prec, T, moe_layers, gemm_dtype)
        a2a = [o for o in moe if o.kind == "comm"]
        wide = dpa and par.ep == t and a2a and dp_moe_by_all_to_all(a2a[0].comm_bytes, T * h * a, t)
        if dpa and par.ep == t and not wide:
            moe = [o for o in moe if o.kind != "comm"]  # tokens reach the experts by the gather instead
        if wide:
            gather_layers = dense_layers
        ops += moe
        if model.n_shared_experts:
            width = model.shared_intermediate or model.n_shared_experts * f
            if wide:  # each rank runs the (replicated) shared expert on its own tokens
                ops.append(_gemm("shared_expert", local, h, mats * width, moe_layers, prec, gemm_dtype))
            else:
                ops.append(_gemm("shared_expert", T, h, mats * width / t, moe_layers, prec, gemm_dtype))

    # --- norms, activations, residuals (elementwise, memory-bound) ---------------------
    ffn_width = model.intermediate if not model.is_moe else model.top_k * model.moe_intermediate
    elem = (2 * 2 + 2 * 3) * local * h * a + 3 * T * ffn_width / t * a
    ops.append(Op("norm_act_residual", "memory", 0.0, elem * layers, attn_dtype, launches=4 * layers))

    if dpa and gather_layers:
        # tokens of every rank gathered before the FFN/MoE and reduce-scattered after: one
        # all-gather plus one reduce-scatter per layer moves what one all-reduce does
        ops.append(Op("dp_gather_scatter", "comm", 0.0, 0.0, gemm_dtype, launches=gather_layers,
                      comm_bytes=T * h * a, group=t, collective="all_reduce"))
    elif t > 1 and not dpa:
        ops.append(Op("tp_all_reduce", "comm", 0.0, 0.0, gemm_dtype, launches=2 * layers,
                      comm_bytes=T * h * a, group=t, collective="all_reduce"))
    if last_stage and anywhere(shape.logit_seqs > 0):
        ops.append(_gemm("lm_head", shape.logit_seqs, h, model.vocab / t, 1, prec, half_dtype, weight_bytes=a))
    if par.pp > 1:
        ops.append(Op("pp_handoff", "comm", 0.0, 0.0, gemm_dtype, launches=1,
                      comm_bytes=T * h * a, group=2, collective="p2p"))
    return ops
