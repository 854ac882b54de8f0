"""A deployment: one model on one instance shape, checked when it is made.

``Deployment`` holds the model, the accelerator, the parallelism, the precision, the engine
profile and the engine settings a scenario chose. Its constructor runs every check that decides
whether the split can exist at all (heads, layers and experts divide; TP inside the scale-up
domain or whole domains; the weight dtype runs on the hardware; the engine runs on the vendor), so every path
that builds one (``estimate``, ``plan``, ``validate``, ``simulate``) meets the same rules,
whatever the order in which accelerators are listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner.dtypes import Precision, default_kv_dtype
from planner.errors import InputError, PlannerError
from planner.hardware import Accelerator, HardwareDB, get_accelerator
from planner.models import ModelArch, ModelDB, get_model
from planner.parallel import Parallel, check_parallel
from planner.profile import Efficiency, EngineSettings, Profile, load_profile

# Engines and the accelerator vendors they run on (TensorRT-LLM is CUDA-only).
ENGINE_VENDORS: dict[str, tuple[str, ...]] = {"trtllm": ("NVIDIA",)}


def engine_runs_on(engine: str, vendor: str) -> bool:
    """Whether ``engine`` has a backend for ``vendor``'s accelerators."""
    vendors = ENGINE_VENDORS.get(engine)
    return vendors is None or vendor in vendors


def check_engine(engine: str, acc: Accelerator) -> None:
    """Raise when the engine has no backend for this accelerator."""
    if not engine_runs_on(engine, acc.vendor):
        raise PlannerError(f"engine: TensorRT-LLM runs on NVIDIA GPUs only, not on {acc.id}; use vllm or sglang")


def precision_for(weights: str, kv_dtype: str | None, engine: str = "vllm") -> Precision:
    """Weights, KV and activation dtypes: the KV cache defaults as the engine does for these weights
    (``dtypes.default_kv_dtype``: 16-bit on vLLM and SGLang, FP8 on TensorRT-LLM with FP8/FP4 weights)."""
    weights = weights.strip().lower()
    act = "fp16" if weights == "fp16" else "bf16"
    kv = kv_dtype.strip().lower() if isinstance(kv_dtype, str) else None
    return Precision(weights=weights, kv=kv or default_kv_dtype(engine, weights), activations=act)


def check_domains(tp: int, acc: Accelerator) -> None:
    """Raise unless a TP group of ``tp`` GPUs fits one scale-up domain or fills whole domains
    (TP/EP/attention-DP across nodes then run their collectives over scale-out as well)."""
    dom = acc.scaleup_domain
    if tp > dom and tp % dom:
        raise PlannerError(f"tp: {tp} exceeds the {dom}-GPU scale-up domain of {acc.id} without filling whole "
                           f"domains; use tp <= {dom} or a multiple of {dom}")


@dataclass(frozen=True)
class Deployment:
    """A model on one instance shape: accelerator, parallelism, precision, engine profile and settings."""

    model: ModelArch
    accelerator: Accelerator
    parallel: Parallel
    precision: Precision
    profile: Profile
    settings: EngineSettings = field(default_factory=EngineSettings)

    def __post_init__(self) -> None:
        m, acc, par = self.model, self.accelerator, self.parallel
        check_parallel(par, m.n_heads, m.n_kv_heads, m.n_layers, m.n_experts)
        check_domains(par.tp, acc)
        self.precision.gemm_dtype(set(acc.peak_flops))
        check_engine(self.profile.engine, acc)

    @property
    def eff(self) -> Efficiency:
        """The profile's factors for this accelerator with the deployment's engine settings applied."""
        base = self.profile.for_accelerator(self.accelerator.id, self.accelerator.family)
        return base.with_settings(self.settings)

    @property
    def engine(self) -> str:
        return self.profile.engine

    @property
    def attn_ranks(self) -> int:
        """Schedulers in one instance: the data-parallel attention ranks (``Parallel.attn_ranks``), else 1."""
        return self.parallel.attn_ranks

    @property
    def seq_cap(self) -> int:
        """Running sequences the whole instance may hold: ``attn_ranks · max_seqs``.

        With data-parallel attention every attention rank runs its own scheduler with its own
        running-sequence cap and token budget: vLLM starts each DP rank as a separate engine core
        (docs.vllm.ai, serving/data_parallel_deployment), TensorRT-LLM applies ``max_batch_size`` and
        ``max_num_tokens`` per rank under ``enable_attention_dp``, and SGLang gives each DP rank
        ``--max-running-requests / dp_size`` (its flag is the instance total; ``planner.emit.engines``
        writes the flags each engine expects). The profile's ``max_seqs`` and ``token_budget`` are the
        per-rank (per-scheduler) values."""
        return self.attn_ranks * int(self.eff.max_seqs)

    @property
    def step_tokens(self) -> int:
        """Tokens one step of the whole instance may hold: ``attn_ranks · token_budget`` (``seq_cap``)."""
        return self.attn_ranks * int(self.eff.token_budget)

    def describe(self) -> dict[str, object]:
        """Plain description: everything needed to rebuild this deployment."""
        eff = self.eff
        return {"model": self.model.id, "accelerator": self.accelerator.id, "tp": self.parallel.tp,
                "pp": self.parallel.pp, "ep": self.parallel.ep, "dp_attn": self.parallel.dp_attn,
                "precision": self.precision.weights, "kv_dtype": self.precision.kv, "engine": self.engine,
                "token_budget": int(eff.token_budget), "max_seqs": int(eff.max_seqs),
                "memory_fraction": eff.memory_util}


def make_deployment(model: str | ModelArch, accelerator: str | Accelerator, tp: int = 1, pp: int = 1, ep: int = 1,
                    precision: str = "bf16", kv_dtype: str | None = None, engine: str | Profile = "vllm",
                    hardware_db: HardwareDB | None = None, model_db: ModelDB | None = None,
                    dp_attn: bool = False, settings: EngineSettings | None = None) -> Deployment:
    """Resolve names and build a checked ``Deployment``. ``settings.kv_dtype`` stands in for ``kv_dtype``.
    numpy scalars (a value read from a DataFrame) are taken as the Python numbers they hold."""
    tp, pp, ep = (v.item() if isinstance(v, np.generic) else v for v in (tp, pp, ep))
    dp_attn = bool(dp_attn) if isinstance(dp_attn, np.bool_) else dp_attn
    if not isinstance(precision, str) or not precision.strip():
        raise InputError("precision", "a weight dtype name such as bf16, fp8 or fp4", precision)
    if kv_dtype is not None and (not isinstance(kv_dtype, str) or not kv_dtype.strip()):
        raise InputError("kv_dtype", "a KV-cache dtype name such as bf16 or fp8, or None for the engine's", kv_dtype)
    if not isinstance(engine, Profile | str | Path):
        raise InputError("engine", "an engine name (vllm, sglang, trtllm), a profile YAML path or a Profile", engine)
    if settings is not None and not isinstance(settings, EngineSettings):
        raise InputError("settings", "an EngineSettings (planner.profile) or None", settings)
    settings = settings or EngineSettings()
    prof = engine if isinstance(engine, Profile) else load_profile(engine)
    return Deployment(get_model(model, model_db), get_accelerator(accelerator, hardware_db),
                      Parallel(tp=tp, pp=pp, ep=ep, dp_attn=dp_attn),
                      precision_for(precision, kv_dtype or settings.kv_dtype, prof.engine), prof, settings)
