"""Engine KV-memory rules and the engine's default KV dtype (numbers worked out by hand)."""

from __future__ import annotations

import pytest

from planner.api import memory
from planner.dtypes import default_kv_dtype
from planner.perf.memory import kv_room_bytes, memory_rule

GB = 1e9


def test_rules_by_hand():
    # 80 GB GPU, 70 GB weights, 2 GB activations, 1 GB overhead, fraction 0.9
    assert kv_room_bytes("total", 0.9, 80 * GB, 70 * GB, 2 * GB, 1 * GB) == pytest.approx(72 * GB - 73 * GB)
    # SGLang: weights + KV in 0.9 x 80 = 72 GB; activations + overhead 3 GB > the 8 GB left? no: no spill
    assert kv_room_bytes("static", 0.9, 80 * GB, 70 * GB, 2 * GB, 1 * GB) == pytest.approx(2 * GB)
    # ... and with 10 GB of activations, 3 GB of them spill into the static pool
    assert kv_room_bytes("static", 0.9, 80 * GB, 70 * GB, 10 * GB, 1 * GB) == pytest.approx(2 * GB - 3 * GB)
    # TensorRT-LLM: 0.9 of the 7 GB left after weights, activations and overhead
    assert kv_room_bytes("free", 0.9, 80 * GB, 70 * GB, 2 * GB, 1 * GB) == pytest.approx(6.3 * GB)
    with pytest.raises(ValueError):
        kv_room_bytes("bogus", 0.9, 1, 0, 0, 0)


def test_rule_by_engine():
    assert memory_rule("vllm") == "total"
    assert memory_rule("SGLang") == "static"
    assert memory_rule("trtllm") == "free"
    assert memory_rule(None) == "total"


def test_memory_plan_states_its_rule_and_trtllm_leaves_more_kv_for_a_tight_70b():
    plans = {e: memory("llama-3.1-70b", "H100-SXM", precision="fp8", kv_dtype="fp8", engine=e)
             for e in ("vllm", "sglang", "trtllm")}
    for e, rule in (("vllm", "total"), ("sglang", "static"), ("trtllm", "free")):
        d = plans[e].to_dict()
        assert d["memory_rule"] == rule and 0 < d["kv_fraction"] <= 1
        assert rule in d["reason"]
    # the same weights: the free-memory rule keeps f of what is left, the total rule loses (1-f) of all 80 GiB
    assert plans["trtllm"].kv_room_bytes_per_gpu > plans["vllm"].kv_room_bytes_per_gpu
    p = plans["trtllm"]
    free = p.memory_bytes_per_gpu - p.weights_bytes_per_gpu - p.activation_bytes_per_gpu - p.overhead_bytes_per_gpu
    assert p.kv_room_bytes_per_gpu == pytest.approx(p.kv_fraction * free)


def test_default_kv_dtype():
    assert default_kv_dtype("vllm", "fp8") == "bf16"      # kv_cache_dtype=auto: the model dtype
    assert default_kv_dtype("sglang", "fp8") == "bf16"
    assert default_kv_dtype("trtllm", "fp8") == "fp8"     # ModelOpt FP8 checkpoints: kv_cache_quant_algo FP8
    assert default_kv_dtype("trtllm", "fp4") == "fp8"
    assert default_kv_dtype("TRTLLM", "int4") == "bf16"
    assert default_kv_dtype("vllm", "fp16") == "fp16"
    assert default_kv_dtype("trtllm", "bf16") == "bf16"
    # wired into deployments: an FP8 TensorRT-LLM deployment caches half the bytes per token of vLLM's
    t = memory("llama-3.1-8b", "H100-SXM", precision="fp8", engine="trtllm")
    v = memory("llama-3.1-8b", "H100-SXM", precision="fp8", engine="vllm")
    assert t.kv_bytes_per_token == pytest.approx(v.kv_bytes_per_token / 2)
