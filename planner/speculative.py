"""Speculative decoding and prefix caching: the settings and the counting rules (no timing here).

Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
Decoding", ICML, eq. 1; Chen et al. 2023): a cheap drafter proposes ``k`` tokens, the target model
checks them in one verify step over ``k + 1`` positions per sequence, keeps the longest accepted
prefix and adds one token of its own (the correction at the first rejection, or a bonus token when
all ``k`` are accepted). With each draft token accepted independently with probability ``α``, the
accepted prefix has length ``j`` with probability ``α^j·(1 − α)`` (``j < k``) and ``α^k`` (``j = k``), so

    E[accepted] = Σ_{j=1..k} α^j = α·(1 − α^k)/(1 − α)
    tokens per step  E = 1 + E[accepted] = (1 − α^(k+1))/(1 − α)      (E = k + 1 at α = 1)

Draft methods (``method``):

- ``mtp``: the model's own multi-token-prediction module (DeepSeek-V3 technical report §2.2 and
  §5.4.3: one extra transformer block per predicted token; second-token acceptance 85–90%, 1.8x
  tokens/s at k = 1); timed as one layer of the target (MoE if the target's layers are) per draft token;
- ``eagle``: an EAGLE head (Li et al. 2024, EAGLE / EAGLE-2; EAGLE-3 2025): one dense decoder layer
  on the target's features, timed as one dense layer of the target's width per draft token;
- ``draft``: a separate small model (``draft_model``, e.g. Llama-3.2-1B for Llama-3.1-70B) decoding
  ``k`` tokens before each verify step.

Prefix caching (vLLM automatic prefix caching, SGLang RadixAttention, Zheng et al. 2024): with hit
ratio ``h`` the first ``h·I`` tokens of an ``I``-token prompt are already in the KV cache, so the
prefill computes only ``(1 − h)·I`` new tokens, which still attend to the whole context. KV rule:
the cached prefix is shared by the requests that hit it and stored once, so one running request
holds ``(1 − h)·I + O`` tokens of its own; the shared prefixes themselves are taken as small next to
the KV pool (true for system prompts, few-shot templates and a popular document; optimistic when the
hits come from each user's own conversation history, which the cache must keep per conversation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.errors import InputError

METHODS = ("mtp", "eagle", "draft")
MAX_DRAFT_TOKENS = 16


def tokens_per_step(draft_tokens: int, acceptance: float) -> float:
    """Expected tokens a sequence gains per verify step, ``(1 − α^(k+1))/(1 − α)`` (module docstring)."""
    k, a = int(draft_tokens), float(acceptance)
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def acceptance_for(draft_tokens: int, tokens_per_step_: float) -> float:
    """The per-token acceptance α at which ``tokens_per_step(draft_tokens, α)`` equals a measured mean
    tokens per verify step E (SGLang's ``Accept length``, vLLM's mean acceptance length): the inverse of
    ``tokens_per_step``, which rises monotonically from 1 (α = 0) to k + 1 (α = 1); solved by bisection."""
    k, e = int(draft_tokens), float(tokens_per_step_)
    if k < 1:
        raise InputError("speculative.draft_tokens", "a whole number >= 1", draft_tokens)
    if not 1.0 <= e <= k + 1:
        raise InputError("speculative accept length", f"tokens per verify step in [1, {k + 1}] for {k} draft "
                         "tokens", tokens_per_step_)
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if tokens_per_step(k, mid) < e:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Speculative:
    """Speculative decoding: draft ``method``, ``draft_tokens`` k per step, per-token ``acceptance`` α,
    and the ``draft_model`` (a model name; method ``draft`` only)."""

    method: str
    draft_tokens: int
    acceptance: float
    draft_model: str | None = None

    def __post_init__(self) -> None:
        from planner.checks import one_of, real, whole

        object.__setattr__(self, "method", one_of(self.method, "speculative.method", METHODS))
        object.__setattr__(self, "draft_tokens", whole(self.draft_tokens, "speculative.draft_tokens", 1,
                                                       MAX_DRAFT_TOKENS))
        acc = real(self.acceptance, "speculative.acceptance")
        if not 0.0 <= acc <= 1.0:
            raise InputError("speculative.acceptance", "a per-token acceptance rate in [0, 1], e.g. 0.7",
                             self.acceptance)
        object.__setattr__(self, "acceptance", acc)
        if self.method == "draft" and not self.draft_model:
            raise InputError("speculative.draft_model", "a model name for method draft, e.g. llama-3.2-1b")
        if self.method != "draft" and self.draft_model:
            raise InputError("speculative.draft_model", "only with method draft (mtp and eagle draft with a "
                             "module of the model itself)", self.draft_model)

    @property
    def tokens_per_step(self) -> float:
        """E = (1 − α^(k+1))/(1 − α): tokens per sequence per verify step."""
        return tokens_per_step(self.draft_tokens, self.acceptance)

    @property
    def verify_tokens(self) -> int:
        """Positions per sequence the verify step computes: the k drafts and the one after them."""
        return self.draft_tokens + 1

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "draft_tokens": self.draft_tokens, "acceptance": self.acceptance,
                "draft_model": self.draft_model, "tokens_per_step": self.tokens_per_step}

    @classmethod
    def parse(cls, raw: Any, where: str = "scenario") -> Speculative | None:
        """From the scenario's ``speculative:`` mapping (None or ``method: none`` for off)."""
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise InputError("speculative", "a mapping of method, draft_tokens, acceptance, draft_model", raw,
                             where=where)
        from planner.checks import known_keys

        known_keys(raw, ("method", "draft_tokens", "acceptance", "draft_model"), where, "speculative.")
        method = raw.get("method")
        if method is None or str(method).lower() in ("none", "off"):
            return None
        if not isinstance(method, str):
            raise InputError("speculative.method", f"one of {', '.join(METHODS)}", method, where=where)
        for key in ("draft_tokens", "acceptance"):
            if raw.get(key) is None:
                raise InputError(f"speculative.{key}", "a whole number of draft tokens per step, e.g. 2"
                                 if key == "draft_tokens" else "a per-token acceptance rate in [0, 1] measured "
                                 "for this drafter (DeepSeek-V3 MTP: 0.85-0.9)", where=where)
        return cls(method=method.strip().lower(), draft_tokens=raw["draft_tokens"], acceptance=raw["acceptance"],
                   draft_model=str(raw["draft_model"]) if raw.get("draft_model") is not None else None)


def check_prefix_hit(value: Any, field: str = "workload.prefix_cache_hit") -> float:
    """A prefix-cache hit ratio in [0, 1): the share of prompt tokens found in the cache."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise InputError(field, "a hit ratio in [0, 1), e.g. 0.5 (share of prompt tokens already cached)", value)
    return float(value)


def cached_tokens(isl, hit: float | None):
    """Prompt tokens found in the cache, ``h·I`` (scalars or numpy arrays)."""
    return isl * (hit or 0.0)


def new_tokens(isl, hit: float | None):
    """Prompt tokens the prefill computes, ``(1 − h)·I``."""
    return isl * (1.0 - (hit or 0.0))


def settings_from_flags(method: str | None, draft_tokens: int | None, acceptance: float | None,
                        draft_model: str | None, prefix_hit: float | None) -> dict[str, Any]:
    """``speculative`` and ``prefix_cache_hit`` from the command line (``--spec-method``, ``--spec-tokens``,
    ``--spec-acceptance``, ``--spec-draft-model``, ``--prefix-hit``), checked; keywords for EngineSettings."""
    spec = None
    if method is None:
        if draft_tokens is not None or acceptance is not None or draft_model is not None:
            raise InputError("--spec-method", f"one of {', '.join(METHODS)} with --spec-tokens and --spec-acceptance")
    else:
        if draft_tokens is None:
            raise InputError("--spec-tokens", "a whole number of draft tokens per step with --spec-method, e.g. 2")
        if acceptance is None:
            raise InputError("--spec-acceptance", "a per-token acceptance rate in [0, 1] with --spec-method, e.g. 0.7")
        spec = Speculative(method=method, draft_tokens=draft_tokens, acceptance=acceptance, draft_model=draft_model)
    hit = None if prefix_hit is None else check_prefix_hit(prefix_hit, "--prefix-hit")
    return {"speculative": spec, "prefix_cache_hit": hit}
