"""One speculative-decoding step: the target's verify pass plus the drafter's passes.

For a step whose decode part holds ``D`` sequences at mean context ``c`` (``planner.speculative``
for the settings and the tokens-per-step rule ``E = (1 − α^(k+1))/(1 − α)``):

    t_step = t_verify + k · t_draft_pass

- verify: the target computes ``k + 1`` positions per sequence, so every GEMM, the MoE routing,
  the collectives and the LM head see ``D·(k + 1)`` tokens, each query attends to about ``c`` keys
  (FLOPs ×(k + 1)), and the cached KV is read once per sequence (``step_time(decode_queries=k+1)``).
  A prompt chunk in the same step (colocated) is timed with it as usual;
- draft pass (one per draft token, sequential): a decode step of ``D`` sequences at context ``c``
  through the drafter, without the engine's per-step host overhead (the passes run inside the same
  engine step): ``mtp`` one layer of the target (DeepSeek-V3 §2.2: a full transformer block, MoE
  where the target's layers are, sharing embedding and head), ``eagle`` one dense layer of the
  target's width (EAGLE: a single decoder layer on the target's features, the target's head), ``draft``
  the whole draft model at the target's weight dtype, on the largest TP that divides both.

Not modelled: the MTP/EAGLE input projection (2h → h, smaller than one layer's attention), tree
drafts (EAGLE-2 dynamic trees verify more than k + 1 positions), and the drafter's weights and
KV in memory (one layer: ≤ 1/n_layers of the target's; a draft model: its own footprint).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from planner.dtypes import Precision
from planner.errors import InputError, PlannerError
from planner.hardware import Accelerator
from planner.models import ModelArch, get_model
from planner.parallel import Parallel, check_parallel
from planner.perf.shape import StepShape, anywhere, decode_shape
from planner.perf.step import seq_host_s, step_time
from planner.profile import Efficiency
from planner.speculative import Speculative

_DRAFTS: dict[tuple[str, str, str | None], ModelArch] = {}


def verify_shape(shape: StepShape, queries: int) -> StepShape:
    """``shape`` with each decode sequence computing ``queries`` positions (the KV read once: step_time)."""
    return replace(shape, decode_seqs=shape.decode_seqs * queries, decode_kv_tokens=shape.decode_kv_tokens * queries)


def draft_arch(model: ModelArch, spec: Speculative) -> ModelArch:
    """The drafter as a model: one layer of the target (mtp, eagle) or the named draft model."""
    key = (model.id, spec.method, spec.draft_model)
    if key in _DRAFTS:
        return _DRAFTS[key]
    if spec.method == "draft":
        try:
            draft = get_model(str(spec.draft_model))
        except PlannerError as exc:
            raise PlannerError(f"speculative.draft_model: {exc}") from None
        if draft.vocab != model.vocab:
            raise InputError("speculative.draft_model", f"a model with {model.id}'s vocabulary of {model.vocab:,} "
                             "tokens", f"{draft.id} ({draft.vocab:,})")
    elif spec.method == "mtp":
        draft = replace(model, id=f"{model.id}:mtp", n_layers=1, n_dense_layers=0, n_sliding_layers=0)
    else:  # eagle: one dense decoder layer of the target's width
        draft = replace(model, id=f"{model.id}:eagle", n_layers=1, n_experts=0, top_k=0, n_shared_experts=0,
                        moe_intermediate=0, shared_intermediate=0, n_dense_layers=0, n_sliding_layers=0,
                        intermediate=model.intermediate or model.moe_intermediate)
    _DRAFTS[key] = draft
    return draft


def draft_parallel(draft: ModelArch, par: Parallel) -> Parallel:
    """The drafter's split: the target's TP (and EP / attention DP where it is MoE), or the largest TP
    dividing the target's that the draft model's heads allow; one pipeline stage."""
    for tp in sorted((t for t in range(1, par.tp + 1) if par.tp % t == 0), reverse=True):
        ep = par.ep if draft.is_moe else 1
        cand = Parallel(tp=tp, pp=1, ep=ep, dp_attn=par.dp_attn and draft.is_moe and tp >= 2)
        try:
            check_parallel(cand, draft.n_heads, draft.n_kv_heads, draft.n_layers, draft.n_experts)
        except PlannerError:
            continue
        return cand
    return Parallel()


def draft_pass_s(model: ModelArch, acc: Accelerator, par: Parallel, prec: Precision, batch, context,
                 eff: Efficiency, spec: Speculative):
    """One draft pass: ``batch`` sequences each drafting one token at ``context``, host overhead excluded."""
    draft = draft_arch(model, spec)
    dpar = draft_parallel(draft, par)
    shape = decode_shape(batch, context)
    st = step_time(draft, acc, dpar, prec, shape, eff)
    return st.step_s - eff.step_overhead_s - seq_host_s(eff, dpar, shape.n_seqs)


def spec_step_s(model: ModelArch, acc: Accelerator, par: Parallel, prec: Precision, shape: StepShape,
                eff: Efficiency, spec: Speculative):
    """Seconds of one speculative step for ``shape`` (module docstring); a step without decodes is
    timed as it is. Scalars or numpy arrays, as the shape holds."""
    if not anywhere(shape.decode_seqs > 0):
        return step_time(model, acc, par, prec, shape, eff).step_s
    q = spec.verify_tokens
    t_verify = step_time(model, acc, par, prec, verify_shape(shape, q), eff, decode_queries=float(q)).step_s
    seqs = np.maximum(shape.decode_seqs, 1e-9)
    context = np.maximum(shape.decode_kv_tokens / seqs - 1.0, 0.0)
    t_draft = spec.draft_tokens * draft_pass_s(model, acc, par, prec, seqs, context, eff, spec)
    has = shape.decode_seqs > 0
    return t_verify + (np.where(has, t_draft, 0.0) if isinstance(has, np.ndarray) else t_draft)
