"""Power and energy of a plan from its load: watts, joules per token, kWh per day.

Power of one accelerator at utilisation u ∈ [0, 1] (the linear model used by, e.g., the
SPECpower-style server models and most LLM-serving energy estimates):

    P(u) = P_idle + u · (TDP − P_idle)

Idle power per accelerator is not in the shipped database (no per-part source was found that we
trust); it defaults to ``DEFAULT_IDLE_FRACTION`` × TDP, the ~15% idle share of TDP tabulated by
nemulai.com ("The Hidden Cost: GPU Electricity Expense Per Training Run", June 2026) and
consistent with 80 W of 700 W measured idle on an H200 (api.serialalice.pt GPU energy benchmark,
2026). Both are low-confidence; a scenario may set ``pricing.idle_fraction``. Every output that
uses it says so.

Energy: E = Σ_periods P_p · Δt_p; kWh = J / 3.6e6; facility energy multiplies IT energy by the
PUE (power usage effectiveness). J/token = P / (output tokens per second).
"""

from __future__ import annotations

DEFAULT_IDLE_FRACTION = 0.15
IDLE_SOURCE = ("idle power = 15% of TDP (default; no per-accelerator source): nemulai.com GPU electricity table "
               "(2026), consistent with 80 W / 700 W idle measured on an H200 (api.serialalice.pt, 2026)")
J_PER_KWH = 3.6e6
HOURS_PER_YEAR = 8760.0


def idle_watts(tdp_w: float, idle_fraction: float = DEFAULT_IDLE_FRACTION) -> float:
    """P_idle = idle_fraction · TDP."""
    return idle_fraction * tdp_w


def power_w(tdp_w: float, utilisation: float, idle_w: float) -> float:
    """P(u) = P_idle + u·(TDP − P_idle), u clipped to [0, 1]."""
    u = min(max(utilisation, 0.0), 1.0)
    return idle_w + u * (tdp_w - idle_w)


def joules_per_token(power: float, tokens_per_s: float) -> float | None:
    """J/token = W / (tokens/s); None with no tokens."""
    return power / tokens_per_s if tokens_per_s > 0 else None


def kwh(joules: float) -> float:
    return joules / J_PER_KWH


def energy_cost_per_hour(power: float, price_per_kwh: float, pue: float) -> float:
    """Cost of running ``power`` watts for one hour at ``price_per_kwh`` with the facility's PUE:
    P/1000 · PUE · price."""
    return power / 1000.0 * pue * price_per_kwh


def plan_energy(groups: list[tuple[int, float, float]], output_tokens_per_s: float, idle_fraction: float,
                pue: float) -> dict[str, float | str | None]:
    """A one-rate plan's draw: ``groups`` as (GPUs, TDP per GPU, utilisation); power
    P = Σ gpus·P(u) (IT), kWh/day = P·PUE·24 h / 1000, J/token = P·PUE / output tokens/s."""
    watts = sum(n * power_w(tdp, u, idle_watts(tdp, idle_fraction)) for n, tdp, u in groups)
    return {"power_w": watts, "kwh_per_day": watts * pue * 24.0 / 1000.0,
            "joules_per_output_token": joules_per_token(watts * pue, output_tokens_per_s), "pue": pue,
            "idle_fraction": idle_fraction, "idle_source": IDLE_SOURCE}
