"""Open loop, the KV cap leaves room for the spread of what the running requests hold
(planner.serving.instance.Instance.caps); offline it is mean occupancy."""

from __future__ import annotations

import math

import pytest
from scipy.special import ndtri

from planner.deployment import make_deployment
from planner.serving.instance import KV_OVERFLOW, RequestSize
from planner.serving.roles import instance_model


def _inst(size: RequestSize, open_loop: bool = True, role: str = "decode"):
    dep = make_deployment("qwen2.5-72b", "MI300X", 2, 1, 1, "fp8", None, "vllm")
    return instance_model(dep, role, size, open_loop=open_loop)


def test_the_cap_solves_mean_plus_z_spread_equals_memory_by_hand():
    size = RequestSize(isl=16000.0, osl=100.0, cs2=0.08)
    inst = _inst(size)
    K, m = inst.memory.max_kv_tokens, 16000.0 + 50.0
    v = 0.08 * 16000.0**2 + 100.0**2 / 12.0
    z = float(ndtri(KV_OVERFLOW))
    c = inst.caps["kv_capacity"]
    assert c * m + z * math.sqrt(c * v) == pytest.approx(K, rel=1e-9)
    assert _inst(size, open_loop=False).caps["kv_capacity"] == pytest.approx(K / m, rel=1e-12)
    assert c < K / m


def test_more_spread_lower_cap_and_never_below_one_request():
    caps = [_inst(RequestSize(isl=16000.0, osl=100.0, cs2=s)).caps["kv_capacity"] for s in (0.0, 0.1, 0.5)]
    assert caps[0] > caps[1] > caps[2]
    huge = _inst(RequestSize(isl=400_000.0, osl=100.0, cs2=4.0))  # barely one request's worth of memory
    mean_cap = huge.memory.max_kv_tokens / (400_000.0 + 50.0)
    assert 1.0 < mean_cap < 5.0  # the case this test is about: room for a request or two
    assert huge.caps["kv_capacity"] >= 1.0 and huge.caps["kv_capacity"] < mean_cap
