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
