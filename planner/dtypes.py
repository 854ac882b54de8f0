"""Number formats: bytes per element and which matrix-unit dtype a kernel runs in.

Bytes per element include the block scales that real formats carry:
- int4 weight-only (GPTQ/AWQ, group size 128 with an fp16 scale and zero): 4 + 32/128 = 4.25 bits.
- fp4 (NVFP4: one e4m3 scale per 16 values, https://docs.nvidia.com/cuda/cublas/#d-block-scaling-factors-layout;
  MXFP4 has one e8m0 scale per 32, 4.25 bits): 4.5 bits, the larger of the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import InputError

BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 4.25 / 8,
    "fp4": 4.5 / 8,
}
WEIGHT_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4", "fp4")
KV_DTYPES = ("bf16", "fp16", "fp8", "int8", "fp4")

# The matrix-unit dtype a GEMM with these weights prefers, then its fall-backs when the
# hardware lacks it: fp8 weights on Ampere run as weight-only (dequantised to bf16, as
# vLLM's Marlin kernels do); int4 is weight-only W4A16 everywhere; fp4 without fp4 units
# runs as W4A8 where fp8 exists (TensorRT-LLM on Hopper) else W4A16.
_COMPUTE_CHAIN: dict[str, tuple[str, ...]] = {
    "bf16": ("bf16", "fp16"),
    "fp16": ("fp16", "bf16"),
    "fp8": ("fp8", "bf16", "fp16"),
    "int8": ("int8", "bf16", "fp16"),
    "int4": ("bf16", "fp16"),
    "fp4": ("fp4", "fp8", "bf16", "fp16"),
}


def bytes_per(dtype: str) -> float:
    """Bytes per element of ``dtype``."""
    try:
        return BYTES_PER_ELEMENT[dtype]
    except KeyError:
        raise InputError("dtype", f"one of {', '.join(BYTES_PER_ELEMENT)}", dtype) from None


@dataclass(frozen=True)
class Precision:
    """Weight, activation and KV-cache dtypes of one deployment.

    Embeddings, the LM head and norms stay in ``activations`` (16-bit) as quantisation
    recipes (FP8 in vLLM/TensorRT-LLM, AWQ, NVFP4) leave them unquantised.
    """

    weights: str = "bf16"
    kv: str = "bf16"
    activations: str = "bf16"

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_DTYPES:
            raise InputError("precision", f"one of {', '.join(WEIGHT_DTYPES)}", self.weights)
        if self.kv not in KV_DTYPES:
            raise InputError("kv_dtype", f"one of {', '.join(KV_DTYPES)}", self.kv)
        if self.activations not in ("bf16", "fp16"):
            raise InputError("activations", "bf16 or fp16", self.activations)

    @property
    def weight_bytes(self) -> float:
        return BYTES_PER_ELEMENT[self.weights]

    @property
    def kv_bytes(self) -> float:
        return BYTES_PER_ELEMENT[self.kv]

    @property
    def act_bytes(self) -> float:
        return BYTES_PER_ELEMENT[self.activations]

    def gemm_dtype(self, supported: tuple[str, ...] | set[str] | frozenset[str]) -> str:
        """Matrix-unit dtype the weight GEMMs run in on hardware supporting ``supported``."""
        for dtype in _COMPUTE_CHAIN[self.weights]:
            if dtype in supported:
                return dtype
        raise InputError("precision", f"a dtype the hardware runs (it has {', '.join(sorted(supported))})",
                         self.weights)

    def attention_dtype(self, supported: tuple[str, ...] | set[str] | frozenset[str]) -> str:
        """Attention runs in 16-bit; fp8 KV on hardware with fp8 units runs fp8 attention (FlashInfer/TRT)."""
        if self.kv == "fp8" and "fp8" in supported:
            return "fp8"
        return self.activations if self.activations in supported else "fp16"


# What each engine stores the KV cache in when the user does not say (its "auto"), by weight dtype.
_FP8_KV_ENGINES = ("trtllm",)


def default_kv_dtype(engine: str, weights: str) -> str:
    """KV-cache dtype an engine uses by default for a checkpoint with ``weights`` weights.

    - **vLLM** ``--kv-cache-dtype auto`` "will use model data type" (engine arguments,
      https://docs.vllm.ai/en/latest/configuration/engine_args.html): FP8 and 4-bit checkpoints keep a
      16-bit KV cache unless FP8 KV is asked for (``--kv-cache-dtype fp8``,
      https://docs.vllm.ai/en/latest/features/quantization/quantized_kvcache/). Since Dec 2025 vLLM
      also honours a ModelOpt checkpoint's ``kv_cache_quant_algo`` (vllm-project/vllm PR #29980); the
      common FP8 checkpoints (llm-compressor) carry no KV scales, so 16-bit stays the default here.
    - **SGLang** "uses the default model precision" for the KV cache unless ``--kv-cache-dtype
      fp8_e4m3|fp8_e5m2`` is given (https://docs.sglang.io/docs/advanced_features/quantized_kv_cache.md);
      FP8 checkpoints usually quantise weights only (sgl-project/sgl-cookbook PR #237): 16-bit KV.
    - **TensorRT-LLM** runs NVIDIA ModelOpt checkpoints with the quantisation "automatically detected
      from the checkpoint" (https://nvidia.github.io/TensorRT-LLM/features/quantization.html); ModelOpt's
      FP8 and NVFP4 checkpoints declare ``kv_cache_quant_algo: FP8`` (hf_quant_config.json), so FP8 and FP4
      weights come with an FP8 KV cache, as the aiconfigurator silicon and MLPerf rows are read
      (``planner.calib.measured``). NVFP4 KV needs an explicit offline quantisation: not a default.

    16-bit checkpoints keep their own dtype (fp16 stays fp16, everything else bf16); int8/int4
    weight-only checkpoints (GPTQ/AWQ/SmoothQuant) keep a 16-bit KV cache in every engine.
    """
    engine = engine.strip().lower()
    weights = weights.strip().lower()
    if weights == "fp16":
        return "fp16"
    if weights in ("fp8", "fp4") and engine in _FP8_KV_ENGINES:
        return "fp8"
    return "bf16"
