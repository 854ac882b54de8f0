"""Engine profiles: the calibrated efficiencies and overheads the roofline multiplies in.

A profile is data (YAML): ``defaults`` plus overrides per accelerator ``families`` and
per accelerator id (``accelerators``), most specific wins. Shipped profiles live in
``planner/profiles/`` (``ideal``, ``vllm``, ``sglang``, ``trtllm``); ``--profile FILE`` loads
a user's file, e.g. one written by ``planner calibrate``.

Size-dependent efficiency is a saturating curve, ``eff(x) = eff_max · x / (x + x_half)``:
GEMMs reach a fraction of peak that grows with the token dimension ``m`` (tiles fill the
SMs), and copies reach a fraction of HBM bandwidth that grows with the bytes they move
(launch and ramp-up are amortised).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from planner._yaml import load_yaml, number
from planner.errors import InputError, PlannerError, UnknownNameError
from planner.speculative import Speculative, check_prefix_hit

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


def _sat(x, top: float, half: float):
    """``top·x/(x + half)``; scalars take the fast path, numpy arrays (capacity grids) broadcast.
    At x = 0 a scalar gets ``top`` (nothing to scale); an array gets 0 (its op does no work)."""
    if isinstance(x, np.ndarray):
        return top * x / np.maximum(x + half, 1e-30)
    return top * x / (x + half) if x > 0 else top


@dataclass(frozen=True)
class Efficiency:
    """Efficiency factors and overheads for one (engine, accelerator) pair.

    ``launch_s`` is the floor of one kernel timed alone (kernel tables); ``kernel_overhead_s``
    is what each kernel adds inside a serving step (CUDA graphs, fused kernels: smaller);
    ``step_overhead_s`` is the engine's per-step host work (scheduling, launching the step) and
    ``seq_overhead_s`` its host work per running sequence per step (input rows, sampling, detokenising);
    ``ttft_overhead_s`` is per-request work before the first token (HTTP, tokenisation, queue hops);
    ``bench_waves`` is not an engine cost but the protocol of the closed-loop benchmarks the profile
    was calibrated on: each client sends that many prompts, so 1/``bench_waves`` of the requests
    are in the idle-start wave (``planner.serving.closed_loop``); open-loop predictions never use it.
    ``moe_eff`` is the engine's MoE grouped-GEMM kernels' efficiency relative to the dense-GEMM and
    copy efficiencies the kernel tables give (they hold no grouped GEMMs): it divides the routed
    experts' compute and weight-streaming time (``planner.perf.roofline``). Engines ship their own MoE
    kernels (TensorRT-LLM's CUTLASS MoE, vLLM's fused_moe, SGLang's), so it is fitted per engine and
    family on end-to-end rows of MoE models, against the dense rows the same overheads explain.
    ``comm_curves`` (1 or 0): time in-domain all-reduces by the measured curves of the accelerator's
    scale-up link kind where it has them (``planner.perf.allreduce_curves``), or by alpha-beta
    everywhere (0: the ``ideal`` profile, a pure roofline).
    """

    gemm_eff_max: float = 1.0
    gemm_m_half: float = 0.0
    gemm_k_half: float = 0.0
    attn_eff_max: float = 1.0
    attn_m_half: float = 0.0
    fp8_eff_scale: float = 1.0
    fp4_eff_scale: float = 1.0
    mem_eff_max: float = 1.0
    mem_bytes_half: float = 0.0
    comm_eff: float = 1.0
    comm_latency_s: float = 0.0
    launch_s: float = 0.0
    kernel_overhead_s: float = 0.0
    step_overhead_s: float = 0.0
    seq_overhead_s: float = 0.0
    ttft_overhead_s: float = 0.0
    bench_waves: float = 5.0
    moe_eff: float = 1.0
    comm_curves: float = 1.0
    power_ref_w_per_tflop: float = 0.0
    power_beta: float = 0.0
    memory_util: float = 0.90
    runtime_overhead_bytes: float = 1.0e9
    token_budget: float = 8192
    max_seqs: float = 1024

    def gemm_eff(self, m: float, k: float = 0.0, rate: float = 1.0) -> float:
        """GEMM efficiency at ``m`` rows (tokens) and reduction depth ``k``:
        ``gemm_eff_max·m/(m + gemm_m_half)·k/(k + gemm_k_half·rate)``. Each output tile streams ``k``
        elements at the matrix units' rate and then pays a fixed cost (pipeline fill, epilogue, store),
        so a shallow GEMM keeps less of the peak; ``rate`` is the dtype's peak over the 16-bit peak,
        since a faster unit finishes the k-loop sooner and the same fixed cost weighs more (in the
        aiconfigurator H100 tables K = 1024 keeps 0.82 of the K = 8192 efficiency in BF16, 0.64 in
        FP8). ``k = 0``: depth not modelled (factor 1)."""
        eff = _sat(m, self.gemm_eff_max, self.gemm_m_half)
        if self.gemm_k_half > 0 and k > 0:
            eff = eff * (k / (k + self.gemm_k_half * rate))
        return eff

    def dtype_scale(self, dtype: str) -> float:
        """Share of the 16-bit efficiency an 8-bit (fp8/int8) or 4-bit kernel keeps: their peaks are
        2x/4x but measured kernels reach a smaller fraction of them (aiconfigurator tables)."""
        if dtype in ("fp8", "int8"):
            return self.fp8_eff_scale
        if dtype == "fp4":
            return self.fp4_eff_scale
        return 1.0

    def attn_eff(self, m: float) -> float:
        """Attention efficiency at ``m`` = tokens per sequence (queries in prefill, context in decode)."""
        return _sat(m, self.attn_eff_max, self.attn_m_half)

    def compute_clock(self, w_per_tflop: float) -> float:
        """Share of its datasheet tensor rate a card sustains in compute-bound kernels, from its board
        power per dense 16-bit TFLOP/s ``w`` against the family's reference part (``power_ref_w_per_tflop``,
        the part the kernel factors were fitted on): ``min(1, w/w_ref)^power_beta``. A card with less
        power per unit of tensor rate meets its power limit first and lowers its clock; with
        P ∝ f·V², β = 1/3 where the voltage follows the clock and 1 where it sits at its floor
        (``planner.perf.power``). 1 without a reference (``power_ref_w_per_tflop`` 0)."""
        if self.power_ref_w_per_tflop <= 0 or self.power_beta <= 0 or w_per_tflop <= 0:
            return 1.0
        return min(1.0, w_per_tflop / self.power_ref_w_per_tflop) ** self.power_beta

    def mem_eff(self, nbytes: float) -> float:
        """Bandwidth efficiency of one kernel moving ``nbytes``: ``mem_eff_max·b/(b + mem_bytes_half)``."""
        return _sat(nbytes, self.mem_eff_max, self.mem_bytes_half)


    @property
    def kernel(self) -> KernelFactors:
        """The fitted kernel factors (shared by every engine on one accelerator family)."""
        return KernelFactors(**{f.name: getattr(self, f.name) for f in fields(KernelFactors)})

    @property
    def overheads(self) -> ServingOverheads:
        """The fitted per-engine serving overheads."""
        return ServingOverheads(**{f.name: getattr(self, f.name) for f in fields(ServingOverheads)})

    @property
    def settings(self) -> EngineSettings:
        """The engine settings these factors assume (token budget, sequence cap, memory fraction)."""
        return EngineSettings(token_budget=int(self.token_budget), max_seqs=int(self.max_seqs),
                              memory_fraction=self.memory_util)

    def with_settings(self, settings: EngineSettings | None) -> Efficiency:
        """A copy with the engine settings a scenario or a flag set (unset fields keep the profile's)."""
        if settings is None:
            return self
        vals: dict[str, float] = {}
        if settings.token_budget is not None:
            vals["token_budget"] = float(settings.token_budget)
        if settings.max_seqs is not None:
            vals["max_seqs"] = float(settings.max_seqs)
        if settings.memory_fraction is not None:
            vals["memory_util"] = settings.memory_fraction
        return replace(self, **vals) if vals else self


@dataclass(frozen=True)
class KernelFactors:
    """Fitted kernel factors: how close GEMMs, attention, copies and collectives get to the peaks."""

    gemm_eff_max: float = 1.0
    gemm_m_half: float = 0.0
    gemm_k_half: float = 0.0
    attn_eff_max: float = 1.0
    attn_m_half: float = 0.0
    fp8_eff_scale: float = 1.0
    fp4_eff_scale: float = 1.0
    mem_eff_max: float = 1.0
    mem_bytes_half: float = 0.0
    comm_eff: float = 1.0
    comm_latency_s: float = 0.0
    launch_s: float = 0.0
    power_ref_w_per_tflop: float = 0.0
    power_beta: float = 0.0


@dataclass(frozen=True)
class ServingOverheads:
    """Fitted serving overheads of one engine: per kernel, per step, per request, runtime memory."""

    kernel_overhead_s: float = 0.0
    step_overhead_s: float = 0.0
    seq_overhead_s: float = 0.0
    ttft_overhead_s: float = 0.0
    bench_waves: float = 5.0
    moe_eff: float = 1.0
    runtime_overhead_bytes: float = 1.0e9


@dataclass(frozen=True)
class EngineSettings:
    """Engine settings a scenario (``engine_settings:``) or a flag may set; ``None`` keeps the profile's.

    - ``token_budget``: tokens one step may hold (vLLM ``--max-num-batched-tokens``, SGLang
      ``--chunked-prefill-size``, TensorRT-LLM ``max_num_tokens``);
    - ``max_seqs``: running-sequence cap (vLLM ``--max-num-seqs``, SGLang ``--max-running-requests``,
      TensorRT-LLM ``max_batch_size``). With data-parallel attention both hold per attention rank (each
      runs its own scheduler), so an instance of ``tp`` ranks runs ``tp`` times them
      (``Deployment.seq_cap``; SGLang's flags state the instance total, ``planner.emit.engines.rank_caps``);
    - ``memory_fraction``: share of HBM the engine may use (vLLM ``--gpu-memory-utilization``,
      SGLang ``--mem-fraction-static``, TensorRT-LLM ``free_gpu_memory_fraction``);
    - ``kv_dtype``: KV-cache dtype (vLLM ``--kv-cache-dtype``);
    - ``speculative``: speculative decoding (``planner.speculative``; scenario key ``speculative:``);
    - ``prefix_cache_hit``: prefix-cache hit ratio (scenario key ``workload.prefix_cache_hit``).
    The last two come from their own scenario keys, not from ``engine_settings:``.
    """

    token_budget: int | None = None
    max_seqs: int | None = None
    memory_fraction: float | None = None
    kv_dtype: str | None = None
    speculative: Speculative | None = None
    prefix_cache_hit: float | None = None

    def __post_init__(self) -> None:
        from planner.checks import fraction, whole

        if self.token_budget is not None:
            whole(self.token_budget, "engine_settings.token_budget", 1, 1 << 22)
        if self.max_seqs is not None:
            whole(self.max_seqs, "engine_settings.max_seqs", 1, 1 << 20)
        if self.memory_fraction is not None:
            fraction(self.memory_fraction, "engine_settings.memory_fraction")
        if self.kv_dtype is not None:
            from planner.dtypes import KV_DTYPES

            if self.kv_dtype not in KV_DTYPES:
                raise InputError("engine_settings.kv_dtype", f"one of {', '.join(KV_DTYPES)}", self.kv_dtype)
        if self.speculative is not None and not isinstance(self.speculative, Speculative):
            raise InputError("speculative", "a Speculative setting (method, draft_tokens, acceptance)",
                             self.speculative)
        if self.prefix_cache_hit is not None:
            check_prefix_hit(self.prefix_cache_hit)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["speculative"] = self.speculative.to_dict() if self.speculative else None
        return out

    @classmethod
    def parse(cls, raw: Any, where: str = "engine_settings") -> EngineSettings:
        """From a mapping (scenario ``engine_settings:``); unknown keys are rejected."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InputError("engine_settings", "a mapping of token_budget, max_seqs, memory_fraction, kv_dtype",
                             raw, where=where)
        known = {f.name for f in fields(cls)} - _OWN_KEYS
        for key in raw:
            if key not in known:
                from planner.checks import unknown_key

                unknown_key(str(key), known, where, "engine_settings.")
        return cls(**{k: raw[k] for k in known if raw.get(k) is not None})


_OWN_KEYS = {"speculative", "prefix_cache_hit"}
"""EngineSettings fields set by their own scenario keys (``speculative:``, ``workload.prefix_cache_hit``)."""
_FIELDS = {f.name for f in fields(Efficiency)}
_FRACTIONS = {"gemm_eff_max", "attn_eff_max", "mem_eff_max", "comm_eff", "memory_util", "fp8_eff_scale",
              "fp4_eff_scale"}


def _parse_eff(raw: Any, base: Efficiency, where: str) -> Efficiency:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise InputError("efficiency block", "a mapping of factor -> number", raw, where=where)
    vals: dict[str, float] = {}
    for key, val in raw.items():
        if key not in _FIELDS:
            import difflib

            hint = difflib.get_close_matches(str(key), sorted(_FIELDS), n=1)
            raise InputError(str(key), "a known factor" + (f" (did you mean {hint[0]}?)" if hint else ""),
                             where=where)
        num = number(val, key, where, allow_zero=True)
        if key in _FRACTIONS and not 0 < num <= 1:
            raise InputError(key, "a fraction in (0, 1]", val, where=where)
        if key == "comm_curves" and num not in (0, 1):
            raise InputError(key, "1 (measured all-reduce curves) or 0 (alpha-beta)", val, where=where)
        if key in ("token_budget", "max_seqs") and (num < 1 or num != int(num)):
            raise InputError(key, "a whole number >= 1", val, where=where)
        vals[key] = num
    return replace(base, **vals)


@dataclass(frozen=True)
class Profile:
    """An engine profile: name, defaults and overrides by accelerator family and id."""

    engine: str
    defaults: Efficiency
    families: tuple[tuple[str, Efficiency], ...] = ()
    accelerators: tuple[tuple[str, Efficiency], ...] = ()
    description: str = ""
    path: str = ""

    def for_accelerator(self, acc_id: str, family: str) -> Efficiency:
        """Most specific efficiency: accelerator id, then family, then defaults."""
        for key, eff in self.accelerators:
            if key.lower() == acc_id.lower():
                return eff
        for key, eff in self.families:
            if key == family:
                return eff
        return self.defaults

    def with_override(self, acc_id: str, eff: Efficiency) -> Profile:
        """A copy where ``acc_id`` uses ``eff`` (calibration from a user's file)."""
        rest = tuple((k, e) for k, e in self.accelerators if k.lower() != acc_id.lower())
        return replace(self, accelerators=(*rest, (acc_id, eff)))

    def to_dict(self) -> dict[str, Any]:
        def d(e: Efficiency) -> dict[str, float]:
            return {f.name: getattr(e, f.name) for f in fields(Efficiency)}

        return {
            "engine": self.engine,
            "description": self.description,
            "defaults": d(self.defaults),
            "families": {k: d(e) for k, e in self.families},
            "accelerators": {k: d(e) for k, e in self.accelerators},
        }


def parse_profile(raw: Any, where: str) -> Profile:
    """Validate a profile document. Family and accelerator blocks inherit from ``defaults``
    (accelerator blocks also from their ``family:`` block when they name one)."""
    if not isinstance(raw, dict):
        raise PlannerError(f"{where}: expected a mapping with engine, defaults, families")
    unknown = set(raw) - {"engine", "description", "source", "defaults", "families", "accelerators"}
    if unknown:
        raise InputError(sorted(unknown)[0], "one of engine, description, source, defaults, families, "
                         "accelerators", where=where)
    engine = raw.get("engine")
    if not isinstance(engine, str) or not engine:
        raise InputError("engine", "a name such as vllm", engine, where=where)
    defaults = _parse_eff(raw.get("defaults"), Efficiency(), where)
    fam_raw = raw.get("families") or {}
    acc_raw = raw.get("accelerators") or {}
    if not isinstance(fam_raw, dict) or not isinstance(acc_raw, dict):
        raise InputError("families", "a mapping name -> factors", where=where)
    families = {str(k): _parse_eff(v, defaults, f"{where} families.{k}") for k, v in fam_raw.items()}
    accs = []
    for k, v in acc_raw.items():
        if v is not None and not isinstance(v, dict):
            raise InputError(f"accelerators.{k}", "a mapping of factor -> number", v, where=where)
        v = dict(v or {})
        base = families.get(str(v.pop("family", "")), defaults)
        accs.append((str(k), _parse_eff(v, base, f"{where} accelerators.{k}")))
    return Profile(engine=engine, defaults=defaults, families=tuple(families.items()),
                   accelerators=tuple(accs), description=str(raw.get("description") or ""), path=where)


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@lru_cache(maxsize=32)
def load_profile(name_or_path: str = "vllm") -> Profile:
    """Load a shipped profile by engine name, or a YAML file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        return parse_profile(load_yaml(path, "profile"), str(path))
    cand = PROFILE_DIR / f"{name_or_path.lower()}.yaml"
    if not cand.is_file():
        raise UnknownNameError(f"engine: unknown profile {name_or_path!r}; expected one of "
                               f"{', '.join(shipped_profiles())} or a path to a profile YAML")
    return parse_profile(load_yaml(cand, "profile"), str(cand))
