"""Memory of one instance per GPU: weights, KV cache, activations, runtime overhead.

The KV room follows the engine's own rule (``MEMORY_RULES``, ``kv_room_bytes``), with f the
profile's ``memory_util``, M the GPU memory, W weights, A activations, O runtime overhead:

    total   (vLLM)          kv_room = f·M − W − A − O
    static  (SGLang)        kv_room = f·M − W − max(0, A + O − (1 − f)·M)
    free    (TensorRT-LLM)  kv_room = f·(M − W − A − O)

    max_kv_tok  = ⌊kv_room / kv_bytes_per_token_per_gpu⌋

Weights per GPU: transformer layers ``/(tp·pp)`` at the weight dtype (MLA's q_a/kv_a
down-projections and the MoE router are replicated across TP ranks; with data-parallel
attention all attention weights are), embeddings and LM head vocab-parallel ``/tp`` in
16-bit on the first/last stage; an EP rank stores its ``⌈E/ep⌉`` expert slots (redundant replicas
fill the spare ones when EP does not divide E). Activations: the peak of a
``token_budget``-token prefill step (hidden states, QKV and FFN intermediates) plus fp32
logits of ``max_seqs`` sequences.

Data-parallel attention (``Parallel.attn_ranks`` = r ranks): ``token_budget`` and ``max_seqs``
hold per rank (each rank runs its own scheduler; vLLM DP engine cores, TensorRT-LLM
``enable_attention_dp``, SGLang ``--enable-dp-attention``), so the instance runs up to
``r·max_seqs`` sequences (``seq_cap`` in the plan) and a GPU holds its own rank's ``token_budget``
tokens through attention unsplit, the ``r·token_budget`` gathered tokens through the FFN split
``/tp``, and logits of the ``r·max_seqs`` sequences over its ``1/tp`` of the vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from planner.dtypes import Precision
from planner.hardware import Accelerator
from planner.models import ModelArch
from planner.parallel import Parallel
from planner.perf.moe import redundant_slots
from planner.perf.ops import kv_bytes_per_token_per_gpu
from planner.profile import Efficiency

# Which share of memory each engine gives the KV cache:
# - vLLM: gpu_memory_utilization (default 0.9) is "the fraction of GPU memory to be used for the model
#   executor", i.e. of the TOTAL memory, which holds weights, peak activations and the KV cache
#   (https://docs.vllm.ai/en/latest/configuration/engine_args.html).
# - SGLang: mem_fraction_static is "the fraction of the memory used for static allocation (model weights
#   and KV cache memory pool)"; activations and CUDA-graph buffers use the rest
#   (https://docs.sglang.ai/advanced_features/server_arguments.html).
# - TensorRT-LLM: kv_cache_config.free_gpu_memory_fraction (default 0.9) is the share of the memory FREE
#   after the weights and runtime buffers are allocated that becomes KV cache
#   (https://nvidia.github.io/TensorRT-LLM/performance/performance-tuning-guide/useful-runtime-flags.html).
MEMORY_RULES: dict[str, str] = {"vllm": "total", "sglang": "static", "trtllm": "free"}
DEFAULT_MEMORY_RULE = "total"


def memory_rule(engine: str | None) -> str:
    """The KV memory rule of ``engine`` (``total`` for engines we do not know, vLLM's)."""
    return MEMORY_RULES.get((engine or "").strip().lower(), DEFAULT_MEMORY_RULE)


def kv_room_bytes(rule: str, fraction: float, memory_bytes: float, weights_bytes: float, activation_bytes: float,
                  overhead_bytes: float) -> float:
    """Bytes per GPU left for the KV cache under ``rule`` (see the module docstring); may be negative."""
    if rule == "total":
        return fraction * memory_bytes - weights_bytes - activation_bytes - overhead_bytes
    if rule == "static":
        spill = max(0.0, activation_bytes + overhead_bytes - (1.0 - fraction) * memory_bytes)
        return fraction * memory_bytes - weights_bytes - spill
    if rule == "free":
        return fraction * (memory_bytes - weights_bytes - activation_bytes - overhead_bytes)
    raise ValueError(f"unknown memory rule {rule!r}; expected one of total, static, free")


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
    memory_rule: str = DEFAULT_MEMORY_RULE
    kv_fraction: float = 0.9
    attention_ranks: int = 1
    """Schedulers in the instance: data-parallel attention ranks (``Parallel.attn_ranks``), else 1."""
    max_seqs_per_rank: int = 0
    """The engine's running-sequence cap, per attention rank (the profile's ``max_seqs``)."""
    seq_cap: int = 0
    """Running sequences the instance may hold: ``attention_ranks · max_seqs_per_rank``."""

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
    # spare expert slots (EP not dividing E) hold redundant replicas: ep·⌈E/ep⌉ experts in all
    split += model.n_moe_layers * redundant_slots(model.n_experts, par.ep) * model.expert_params
    stage = math.ceil(model.n_layers / par.pp) / model.n_layers  # share of the layers on the fullest stage
    per_gpu = ((split / par.tp + replicated) * w + (model.n_moe_layers * router + norms) * a) * stage
    per_gpu += emb_stage / par.tp * a
    return per_gpu, total


def activation_bytes(model: ModelArch, par: Parallel, prec: Precision, eff: Efficiency) -> float:
    """Peak activation workspace of a ``token_budget`` prefill step, per GPU (per-rank budget and
    sequence cap under data-parallel attention: module docstring)."""
    t, r = par.tp, par.attn_ranks
    t_attn = 1 if par.dp_attn else t  # attention heads split over TP, or whole on each DP rank
    ffn = model.intermediate if not model.is_moe else max(model.intermediate if model.n_dense_layers else 0,
                                                          model.top_k * model.moe_intermediate)
    per_token = 4 * model.hidden + (model.q_dim + 2 * model.n_kv_heads * model.head_dim) / t_attn + 2 * ffn * r / t
    logits = r * eff.max_seqs * model.vocab / t * 4.0
    return eff.token_budget * per_token * prec.act_bytes + logits


def memory_plan(model: ModelArch, acc: Accelerator, par: Parallel, prec: Precision, eff: Efficiency,
                min_kv_tokens: int = 2048, context: int | None = None, engine: str | None = None) -> MemoryPlan:
    """Whether the model fits on ``par.gpus`` of ``acc`` and how many KV tokens are left.

    The KV room follows ``engine``'s rule (``memory_rule``; ``memory_rule`` and ``kv_fraction`` in
    the plan say which). ``fits`` needs room for at least ``min_kv_tokens`` cached tokens (one
    request of that length); the reason says what is short and by how much.
    """
    w_gpu, w_total = weights_bytes(model, par, prec)
    act = activation_bytes(model, par, prec, eff)
    rule = memory_rule(engine)
    overhead = eff.runtime_overhead_bytes
    room = kv_room_bytes(rule, eff.memory_util, acc.memory_bytes, w_gpu, act, overhead)
    # memory the engine uses at all: f·M under vLLM's rule; all of it under SGLang's (weights + KV in f·M,
    # activations in the rest) and TensorRT-LLM's (KV takes f of what is left)
    usable = eff.memory_util * acc.memory_bytes if rule == "total" else acc.memory_bytes
    kv_tok_gpu = kv_bytes_per_token_per_gpu(model, par, prec.kv_bytes, context)
    kv_tok = model.kv_bytes_per_token(prec.kv_bytes, context)
    max_tok = int(room // kv_tok_gpu) if room > 0 else 0
    fits = max_tok >= min_kv_tokens
    gib = 2**30
    if room < 0:
        reason = (f"weights {w_gpu / gib:.1f} GiB + activations {act / gib:.1f} GiB + overhead "
                  f"{overhead / gib:.1f} GiB per GPU exceed the usable {usable / gib:.1f} GiB of {acc.id} "
                  f"at {par.label()}; use more GPUs (higher TP/PP), a smaller weight dtype, or a larger GPU")
    elif not fits:
        reason = (f"only {max_tok} KV tokens fit ({room / gib:.2f} GiB left per GPU), below the {min_kv_tokens} "
                  f"needed; use more GPUs or a smaller KV dtype")
    else:
        reason = f"fits with {room / gib:.1f} GiB per GPU for KV cache ({max_tok:,} tokens)"
    reason += f" [{rule} rule: {_RULE_TEXT[rule].format(f=eff.memory_util)}]"
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
        memory_rule=rule,
        kv_fraction=eff.memory_util,
        attention_ranks=par.attn_ranks,
        max_seqs_per_rank=int(eff.max_seqs),
        seq_cap=par.attn_ranks * int(eff.max_seqs),
    )


_RULE_TEXT = {"total": "KV gets {f:.2f} of total memory less weights, activations and overhead (vLLM)",
              "static": "weights + KV get {f:.2f} of total memory (SGLang mem_fraction_static)",
              "free": "KV gets {f:.2f} of the memory free after weights, activations and overhead (TensorRT-LLM)"}
