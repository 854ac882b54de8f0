"""Parallelism of one serving instance: tensor (TP), pipeline (PP) and expert (EP) degrees."""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import InputError, PlannerError


@dataclass(frozen=True)
class Parallel:
    """TP×PP GPUs per instance; EP shards the routed experts across ``ep`` of the TP ranks.

    MoE layers run with expert parallelism ``ep`` and expert tensor parallelism
    ``moe_tp = tp / ep`` (vLLM/SGLang/TensorRT-LLM style: EP groups are carved from the
    TP group), so ``ep`` must divide ``tp``. With ``dp_attn`` the attention runs data-parallel
    across the ``tp`` GPUs (each holds the attention weights and the KV of its own sequences) while
    the MoE layers stay expert/tensor-parallel across them (SGLang ``--enable-dp-attention``,
    TensorRT-LLM ``enable_attention_dp``). ``ep`` need not divide the expert count: each EP rank
    holds ``⌈E/ep⌉`` expert slots and the spare ones hold redundant replicas of hot experts
    (``planner.perf.moe``; CloudMatrix384 runs DeepSeek decode at EP320).
    """

    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp_attn: bool = False

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "ep"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise InputError(name, "an integer >= 1", val)
        if self.tp % self.ep:
            raise InputError("ep", f"a divisor of tp={self.tp} (EP groups are carved from the TP group)", self.ep)
        if not isinstance(self.dp_attn, bool):
            raise InputError("dp_attn", "true or false", self.dp_attn)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @property
    def moe_tp(self) -> int:
        return self.tp // self.ep

    @property
    def attn_ranks(self) -> int:
        """Data-parallel attention ranks: ``tp`` with ``dp_attn`` (each GPU of a stage runs attention and its
        own scheduler for its own sequences), else 1. The engine's running-sequence cap and token budget hold
        per rank, so an instance runs ``attn_ranks`` times them (``planner.deployment.Deployment.seq_cap``)."""
        return self.tp if self.dp_attn else 1

    def label(self) -> str:
        txt = f"TP{self.tp}"
        if self.pp > 1:
            txt += f"·PP{self.pp}"
        if self.ep > 1:
            txt += f"·EP{self.ep}"
        if self.dp_attn:
            txt += "·DPA"
        return txt


def check_parallel(par: Parallel, n_heads: int, n_kv_heads: int, n_layers: int, n_experts: int) -> None:
    """Raise when a model cannot be split this way (heads, layers or experts don't divide)."""
    if par.dp_attn and (par.tp < 2 or not n_experts):
        raise PlannerError("dp_attn: data-parallel attention needs tp >= 2 and a mixture-of-experts model")
    if n_heads % par.tp and not par.dp_attn:
        raise PlannerError(f"tp: {par.tp} does not divide the model's {n_heads} attention heads; "
                           f"try tp in {[t for t in (1, 2, 4, 8, 16) if n_heads % t == 0]}")
    if n_kv_heads % par.tp and par.tp % n_kv_heads and not par.dp_attn:
        raise PlannerError(f"tp: {par.tp} and the model's {n_kv_heads} KV heads must divide one another")
    if par.pp > n_layers:
        raise PlannerError(f"pp: {par.pp} exceeds the model's {n_layers} layers")
    if par.ep > 1 and not n_experts:
        raise PlannerError("ep: expert parallelism needs a mixture-of-experts model")
    if n_experts and par.ep > 2 * n_experts:
        raise PlannerError(f"ep: {par.ep} is more than twice the model's {n_experts} experts (each EP rank holds "
                           f"at least one expert, at most one replica per expert); use ep <= {2 * n_experts}")
