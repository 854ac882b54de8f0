"""Memory of one instance per GPU: weights, KV cache, activations, runtime overhead.

    usable      = memory_util · HBM                     (vLLM's gpu_memory_utilization)
    kv_room     = usable − weights − activations − runtime_overhead
    max_kv_tok  = ⌊kv_room / kv_bytes_per_token_per_gpu⌋

Weights per GPU: transformer layers ``/(tp·pp)`` at the weight dtype (MLA's q_a/kv_a
down-projections and the MoE router are replicated across TP ranks; with data-parallel
attention all attention weights are), embeddings and LM head vocab-parallel ``/tp`` in
16-bit on the first/last stage. Activations: the peak of a
``token_budget``-token prefill step (hidden states, QKV and FFN intermediates) plus fp32
logits of ``max_seqs`` sequences.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from planner.dtypes import Precision
from planner.hardware import Accelerator
from planner.models import ModelArch
from planner.parallel import Parallel
from planner.perf.ops import kv_bytes_per_token_per_gpu
from planner.profile import Efficiency


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory of one instance (bytes) and the KV capacity it leaves."""

    gpus: int
    memory_bytes_per_gpu: float
    usable_bytes_per_gpu: float
    weights_bytes_per_gpu: float
    weights_bytes_total: float
    activation_bytes_per_gpu: float
    overhead_bytes_per_gpu: float
    kv_room_bytes_per_gpu: float
    kv_bytes_per_token: float
    kv_bytes_per_token_per_gpu: float
    max_kv_tokens: int
    min_kv_tokens: int
    fits: bool
    reason: str

    def to_dict(self) -> dict[str, float | int | bool | str]:
        return asdict(self)


def weights_bytes(model: ModelArch, par: Parallel, prec: Precision) -> tuple[float, float]:
    """(bytes on the fullest GPU, bytes of the whole model)."""
    a, w = prec.act_bytes, prec.weight_bytes
    replicated_per_layer = 0.0
    if model.is_mla:
        replicated_per_layer += model.hidden * (model.q_lora_rank + model.kv_lora_rank + model.qk_rope_head_dim)
    router = model.hidden * model.n_experts if model.is_moe else 0
    layer_params = model.layer_params - model.n_moe_layers * router
    replicated = model.n_layers * replicated_per_layer
    split = layer_params - replicated
    norms = 2 * model.hidden * model.n_layers
    total = layer_params * w + (model.n_moe_layers * router + norms + model.embedding_params) * a
    emb_in = model.vocab * model.hidden + model.learned_positions * model.hidden
    head = 0 if model.tied_embeddings else model.vocab * model.hidden
    emb_stage = (emb_in + head) if par.pp == 1 else max(emb_in, head or emb_in)
    if par.dp_attn:  # attention weights replicated on every rank, FFN/experts split as before
        attn = model.n_layers * model.attn_params_per_layer
        split, replicated = split - (attn - replicated), attn
    stage = math.ceil(model.n_layers / par.pp) / model.n_layers  # share of the layers on the fullest stage
    per_gpu = ((split / par.tp + replicated) * w + (model.n_moe_layers * router + norms) * a) * stage
    per_gpu += emb_stage / par.tp * a
    return per_gpu, total


def activation_bytes(model: ModelArch, par: Parallel, prec: Precision, eff: Efficiency) -> float:
    """Peak activation workspace of a ``token_budget`` prefill step, per GPU."""
    t = par.tp
    ffn = model.intermediate if not model.is_moe else max(model.intermediate if model.n_dense_layers else 0,
                                                          model.top_k * model.moe_intermediate)
    per_token = 4 * model.hidden + (model.q_dim + 2 * model.n_kv_heads * model.head_dim) / t + 2 * ffn / t
    logits = eff.max_seqs * model.vocab / t * 4.0
    return eff.token_budget * per_token * prec.act_bytes + logits


def memory_plan(model: ModelArch, acc: Accelerator, par: Parallel, prec: Precision, eff: Efficiency,
                min_kv_tokens: int = 2048, context: int | None = None) -> MemoryPlan:
    """Whether the model fits on ``par.gpus`` of ``acc`` and how many KV tokens are left.

    ``fits`` needs room for at least ``min_kv_tokens`` cached tokens (one request of that
    length); the reason says what is short and by how much.
    """
    w_gpu, w_total = weights_bytes(model, par, prec)
    act = activation_bytes(model, par, prec, eff)
    usable = eff.memory_util * acc.memory_bytes
    overhead = eff.runtime_overhead_bytes
    room = usable - w_gpu - act - overhead
    kv_tok_gpu = kv_bytes_per_token_per_gpu(model, par, prec.kv_bytes, context)
    kv_tok = model.kv_bytes_per_token(prec.kv_bytes, context)
    max_tok = int(room // kv_tok_gpu) if room > 0 else 0
    fits = max_tok >= min_kv_tokens
    gib = 2**30
    if w_gpu + act + overhead > usable:
        reason = (f"weights {w_gpu / gib:.1f} GiB + activations {act / gib:.1f} GiB + overhead "
                  f"{overhead / gib:.1f} GiB per GPU exceed the usable {usable / gib:.1f} GiB of {acc.id} "
                  f"at {par.label()}; use more GPUs (higher TP/PP), a smaller weight dtype, or a larger GPU")
    elif not fits:
        reason = (f"only {max_tok} KV tokens fit ({room / gib:.2f} GiB left per GPU), below the {min_kv_tokens} "
                  f"needed; use more GPUs or a smaller KV dtype")
    else:
        reason = f"fits with {room / gib:.1f} GiB per GPU for KV cache ({max_tok:,} tokens)"
    return MemoryPlan(
        gpus=par.gpus,
        memory_bytes_per_gpu=acc.memory_bytes,
        usable_bytes_per_gpu=usable,
        weights_bytes_per_gpu=w_gpu,
        weights_bytes_total=w_total,
        activation_bytes_per_gpu=act,
        overhead_bytes_per_gpu=overhead,
        kv_room_bytes_per_gpu=max(room, 0.0),
        kv_bytes_per_token=kv_tok,
        kv_bytes_per_token_per_gpu=kv_tok_gpu,
        max_kv_tokens=max_tok,
        min_kv_tokens=min_kv_tokens,
        fits=fits,
        reason=reason,
    )
