"""Chunked prefill: the one function every role uses to time a prompt.

Engines with chunked prefill (vLLM V1, SGLang, TensorRT-LLM) give each step a token budget
``B``; ``C`` decoding sequences take one token each, so a prompt of ``I`` tokens is prefilled in

    n = ⌈I / max(B − C, 1)⌉   chunks of   I / n   tokens,

each in a step it shares with the ``C`` decodes. Chunk ``k`` attends to ``k·I/n`` cached tokens.
The first ``n − 1`` chunks are timed at their mean past ``(n − 2)/2 · I/n`` (attention work is
linear in the past, the rest does not depend on it) and the last chunk, which also computes the
logits, at its own past ``I − I/n``. An idle instance is ``C = 0``. Scalars or numpy arrays.

Prefix caching (hit ratio h, ``planner.speculative``): only ``I' = (1 − h)·I`` tokens are computed,
``n = ⌈I'/max(B − C·q, 1)⌉`` chunks after a cached past of ``h·I`` (every past above shifts by it),
where ``q`` is the positions a decoding sequence takes per step (``k + 1`` under speculative
decoding, whose steps ``step_s`` times as verify + draft: ``planner.perf.spec_step``).

Data-parallel attention (``r = tp`` ranks, ``Deployment.attn_ranks``): each rank schedules its own
sequences with its own budget ``B`` (``Deployment.seq_cap``), and a prompt runs on one rank beside
that rank's share ``C/r`` of the decodes, so ``n = ⌈I'/max(B − C·q/r, 1)⌉`` (``rank_decode_tokens``).
"""

from __future__ import annotations

import numpy as np

from planner.deployment import Deployment
from planner.perf.shape import StepShape, decode_shape, prefill_shape
from planner.perf.spec_step import spec_step_s
from planner.perf.step import step_time
from planner.speculative import new_tokens


def prefill_chunks(isl, budget: float, concurrency=0.0):
    """Chunks a prompt of ``isl`` tokens takes when ``concurrency`` decodes share each step's ``budget``."""
    return np.ceil(np.asarray(isl, dtype=float) / np.maximum(budget - np.asarray(concurrency, dtype=float), 1.0))


def step_s(dep: Deployment, shape: StepShape):
    """Step time of ``shape`` on the deployment (scalar or array, as the shape holds); with speculative
    decoding a step with decodes is a verify step plus the draft passes (``spec_step_s``)."""
    spec = dep.settings.speculative
    if spec is not None:
        return spec_step_s(dep.model, dep.accelerator, dep.parallel, dep.precision, shape, dep.eff, spec)
    return step_time(dep.model, dep.accelerator, dep.parallel, dep.precision, shape, dep.eff).step_s


def decode_positions(dep: Deployment) -> int:
    """Token-budget positions one decoding sequence takes per step: 1, or k + 1 when speculating."""
    spec = dep.settings.speculative
    return spec.verify_tokens if spec is not None else 1


def rank_decode_tokens(dep: Deployment, concurrency):
    """Budget positions the decodes take on the rank a prompt runs on: ``C·q`` spread over the
    deployment's data-parallel attention ranks (``C·q`` without data-parallel attention)."""
    return np.asarray(concurrency, dtype=float) * decode_positions(dep) / dep.attn_ranks


def chunked_prefill_s(dep: Deployment, isl, concurrency=0.0, context: float = 0.0, spread: bool = False):
    """Time from a prompt's admission to its first token: ``n`` chunked steps (module docstring),
    each sharing the step with ``concurrency`` sequences decoding at ``context`` cached tokens.
    ``spread``: ``isl`` is prompt tokens spread evenly over the ``r`` data-parallel attention ranks
    (prompts arriving together), each rank chunking its ``isl/r`` beside its ``C/r`` decodes, so a step
    holds ``r`` such chunks; without data-parallel attention (``r = 1``) the same as one prompt."""
    vector = isinstance(isl, np.ndarray) or isinstance(concurrency, np.ndarray)
    pieces = float(dep.attn_ranks if spread else 1)
    isl_a = np.asarray(isl, dtype=float) / pieces
    conc = np.asarray(concurrency, dtype=float) * np.ones_like(isl_a)
    fresh = np.maximum(new_tokens(isl_a, dep.settings.prefix_cache_hit), 1.0)
    cached = np.maximum(isl_a - fresh, 0.0)
    n = prefill_chunks(fresh, dep.eff.token_budget, rank_decode_tokens(dep, conc))
    chunk = fresh / n
    busy = conc > 1e-9
    dec = decode_shape(np.where(busy, conc, 1.0), context)
    ranks = np.full_like(chunk, pieces)
    last = prefill_shape(ranks, chunk, past=isl_a - chunk, last_chunk=True)
    t_last = step_s(dep, last + dec) if busy.any() else 0.0
    t_last_alone = step_s(dep, last)
    total = np.where(busy, t_last, t_last_alone)
    if np.any(n > 1):
        early = prefill_shape(ranks, chunk, past=cached + np.maximum(n - 2.0, 0.0) / 2.0 * chunk, last_chunk=False)
        t_early = np.where(busy, step_s(dep, early + dec) if busy.any() else 0.0, step_s(dep, early))
        total = total + (n - 1.0) * t_early
    return total if vector else float(total)
