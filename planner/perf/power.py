"""Power-limited tensor clocks: which part each family's kernel factors describe.

A datasheet's dense TFLOP/s is the tensor rate at boost clock. Under a compute-bound load a card
draws its board power limit first and lowers its clock, so parts of one family with less power per
unit of tensor rate sustain less of their datasheet: an H100 NVL (400 W, 835 TFLOP/s BF16: 0.48 W
per TFLOP/s) against an H100 SXM (700 W, 989: 0.71), an MI300X (750 W) against an MI325X (1000 W,
the same die and peak). ``Efficiency.compute_clock`` scales compute-bound work by

    clock = min(1, w / w_ref)^β,    w = tdp_w / dense BF16 TFLOP/s    (Accelerator.watts_per_tflop)

against the family's reference part: the one its kernel factors were fitted on, whose clock the
fitted efficiencies already include. A part with more power per TFLOP/s than the reference is not
credited more (its clock is taken as the reference's). Dynamic power is P ∝ f·V². Where the voltage
follows the clock, P ∝ f³ and β = 1/3. Where it sits at its floor, P ∝ f and β = 1. β is fitted,
with a prior of 2/3 in [1/3, 1], on the MI300X and MI325X rows together (``scripts/fit_profiles.py``,
the "kernel cdna3" fit). Those are the one pair of parts with the same die and peak at two board
powers, and every family with a reference uses the value. The rows move it little from its prior,
since the two parts' rows are also of different MLPerf rounds; docs/accuracy.md gives the value and
its standard error. Memory-bound work is not scaled.
"""

from __future__ import annotations

POWER_REFERENCE: dict[str, str] = {
    "ampere": "A100-SXM-80GB",  # aiconfigurator kernel tables (planner.calib.kernels)
    "hopper": "H100-SXM",  # kernel tables on H100-SXM and H200-SXM, both 700 W and 989 TFLOP/s
    "blackwell": "B200",  # kernel tables
    "cdna3": "MI325X",  # serving rows of MI300X and MI325X: the 1000 W part is the less limited
    "ada": "L40S",  # uncalibrated defaults: L4 (72 W) is then the limited part
}
BETA_PRIOR = 2.0 / 3.0
