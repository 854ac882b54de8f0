"""Power-limited tensor clocks (planner.perf.power): parts with less board power per TFLOP/s than their
family's reference run compute-bound work slower, memory-bound work not at all."""

from __future__ import annotations

from dataclasses import replace

import pytest

from planner.hardware import default_hardware
from planner.perf.power import POWER_REFERENCE
from planner.profile import Efficiency, load_profile


def test_clock_by_hand():
    eff = Efficiency(power_ref_w_per_tflop=0.7078, power_beta=0.5)
    hw = default_hardware()
    nvl = hw.get("H100-NVL").watts_per_tflop
    assert nvl == pytest.approx(400 / 835.5, rel=1e-9)
    assert eff.compute_clock(nvl) == pytest.approx((400 / 835.5 / 0.7078) ** 0.5, rel=1e-9)
    assert eff.compute_clock(hw.get("GH200-144GB").watts_per_tflop) == 1.0  # more power: not credited
    assert Efficiency().compute_clock(nvl) == 1.0  # no reference: no scaling


def test_every_reference_part_runs_at_its_own_clock_in_the_shipped_profiles():
    hw = default_hardware()
    for engine in ("vllm", "sglang", "trtllm"):
        prof = load_profile(engine)
        for fam, ref in POWER_REFERENCE.items():
            acc = hw.get(ref)
            eff = prof.for_accelerator(acc.id, acc.family)
            assert eff.compute_clock(acc.watts_per_tflop) == pytest.approx(1.0, abs=1e-3), (engine, fam)
            assert 1 / 3 <= eff.power_beta <= 1.0


def test_a_power_limited_card_is_slower_when_compute_bound_and_not_when_memory_bound():
    from planner.perf.ops import Op
    from planner.perf.roofline import op_time

    hw = default_hardware()
    nvl = hw.get("H100-NVL")
    # the same card at its own power and with power to spare: only the clock differs
    eff = load_profile("trtllm").for_accelerator(nvl.id, nvl.family)
    gemm = Op(name="gemm", kind="gemm", flops=1e15, bytes=1e6, m=4096.0, k=8192.0, dtype="bf16")
    copy = Op(name="copy", kind="memory", flops=0.0, bytes=1e10, dtype="bf16")
    limited = op_time(gemm, nvl, eff).compute_s
    unlimited = op_time(gemm, replace(nvl, tdp_w=2000.0), eff).compute_s
    assert limited / unlimited == pytest.approx(1 / eff.compute_clock(nvl.watts_per_tflop), rel=1e-9)
    assert limited > unlimited
    assert op_time(copy, nvl, eff).memory_s == op_time(copy, replace(nvl, tdp_w=2000.0), eff).memory_s
