"""The shape of one forward step: which tokens are computed and what context they attend to.

Prefill and decode are the same computation with different shapes (one code path): a
sequence contributes ``q`` new tokens attending to ``p`` past tokens. Decode is ``q = 1``;
a prefill chunk is ``q = chunk`` with ``p`` tokens already cached (chunked prefill). A step
of continuous batching carries both parts; GEMMs see all tokens, attention each part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.errors import InputError


def anywhere(mask) -> bool:
    """True when a bool, or any element of a numpy mask, holds (cheaper than ``np.any`` on scalars).
    Step shapes may hold numpy arrays: a whole grid of operating points timed in one call."""
    return bool(mask.any()) if isinstance(mask, np.ndarray) else bool(mask)


@dataclass(frozen=True)
class StepShape:
    """Aggregate over the sequences of one step, split into a prefill and a decode part.

    Prefill part: ``prefill_seqs`` sequences computing ``prefill_tokens`` (Σq) new tokens,
    ``prefill_pairs`` = Σ q·(p + (q+1)/2) causal query-key pairs, ``prefill_kv_tokens`` =
    Σ(p+q) tokens of context, ``prefill_logits`` sequences finishing their prompt this step.
    Decode part: ``decode_seqs`` sequences with ``decode_kv_tokens`` = Σ(context+1) cached tokens.
    """

    prefill_seqs: float = 0.0
    prefill_tokens: float = 0.0
    prefill_pairs: float = 0.0
    prefill_kv_tokens: float = 0.0
    prefill_logits: float = 0.0
    decode_seqs: float = 0.0
    decode_kv_tokens: float = 0.0

    def __post_init__(self) -> None:
        vals = (self.prefill_seqs, self.prefill_tokens, self.prefill_pairs, self.prefill_kv_tokens,
                self.prefill_logits, self.decode_seqs, self.decode_kv_tokens)
        if any(anywhere(v < 0) for v in vals) or anywhere(self.new_tokens <= 0):
            raise InputError("batch", "at least one sequence with at least one new token", vals)

    @property
    def n_seqs(self) -> float:
        return self.prefill_seqs + self.decode_seqs

    @property
    def new_tokens(self) -> float:
        return self.prefill_tokens + self.decode_seqs

    @property
    def logit_seqs(self) -> float:
        return self.prefill_logits + self.decode_seqs

    @property
    def kv_tokens(self) -> float:
        return self.prefill_kv_tokens + self.decode_kv_tokens

    def scaled(self, factor: float) -> StepShape:
        """1/factor of the batch (one of ``factor`` pipeline micro-batches)."""
        f = 1.0 / factor
        return StepShape(self.prefill_seqs * f, self.prefill_tokens * f, self.prefill_pairs * f,
                         self.prefill_kv_tokens * f, self.prefill_logits * f, self.decode_seqs * f,
                         self.decode_kv_tokens * f)

    def __add__(self, other: StepShape) -> StepShape:
        return StepShape(*(a + b for a, b in zip(_vals(self), _vals(other))))


def _vals(s: StepShape) -> tuple[float, ...]:
    return (s.prefill_seqs, s.prefill_tokens, s.prefill_pairs, s.prefill_kv_tokens, s.prefill_logits,
            s.decode_seqs, s.decode_kv_tokens)


def prefill_shape(batch: float, chunk: float, past: float = 0, last_chunk: bool = True) -> StepShape:
    """``batch`` sequences each computing ``chunk`` new tokens after ``past`` cached ones."""
    if np.any(np.asarray(batch) <= 0) or np.any(np.asarray(chunk) < 1) or np.any(np.asarray(past) < 0):
        raise InputError("prefill", "batch > 0, chunk >= 1, past >= 0", (batch, chunk, past))
    return StepShape(prefill_seqs=batch, prefill_tokens=batch * chunk,
                     prefill_pairs=batch * chunk * (past + (chunk + 1) / 2),
                     prefill_kv_tokens=batch * (past + chunk), prefill_logits=batch if last_chunk else 0.0 * batch)


def prompt_share_shape(requests: float, isl: float, cached: float = 0.0) -> StepShape:
    """The prefill work of ``requests`` whole prompts of ``isl`` tokens, spread over steps by
    chunked prefill: the same tokens and causal pairs as prefilling them in one piece. With ``cached``
    tokens of each prompt in the prefix cache, only the ``isl − cached`` others are computed, after
    that past: pairs ``(I − c)·(c + (I − c + 1)/2)``."""
    fresh = isl - cached
    return StepShape(prefill_seqs=requests, prefill_tokens=requests * fresh,
                     prefill_pairs=requests * fresh * (cached + (fresh + 1) / 2), prefill_kv_tokens=requests * isl,
                     prefill_logits=requests)


def decode_shape(batch: float, context: float) -> StepShape:
    """``batch`` sequences each generating one token with ``context`` tokens cached (mean)."""
    if np.any(np.asarray(batch) <= 0) or np.any(np.asarray(context) < 0):
        raise InputError("decode", "batch > 0 and context >= 0", (batch, context))
    return StepShape(decode_seqs=batch, decode_kv_tokens=batch * (context + 1))


def phase_shape(phase: str, batch: int, context: int, chunk: int | None = None) -> StepShape:
    """Shape for the CLI's ``--phase``: prefill of ``context`` tokens (in one chunk unless
    ``chunk`` is given: the last chunk of that prefill) or decode at ``context`` tokens."""
    if phase == "prefill":
        if chunk and chunk < context:
            return prefill_shape(batch, chunk, past=context - chunk)
        return prefill_shape(batch, context)
    if phase == "decode":
        return decode_shape(batch, context)
    raise InputError("phase", "prefill or decode", phase)
