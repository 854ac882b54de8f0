"""The result of a discrete-event simulation (plain data)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class SimResult:
    """Latency and throughput of the completed requests of one simulation.

    ``ttft_s``, ``tpot_s`` and ``e2e_s`` hold ``mean``, ``p50``, ``p90``, ``p95``, ``p99`` over
    completed requests; per-request TPOT = (finish − first token)/(osl − 1), over requests with
    osl > 1. ``duration_s`` runs from the first arrival to the last completion; throughputs are
    completed requests (their output tokens) over it. ``mean_decode_batch`` is the time-weighted
    mean decode batch over steps with a decode part; ``mean_in_system`` the time-average number
    of requests between arrival and finish over ``duration_s`` (Little's law: ≈ requests_per_s ·
    mean e2e). ``max_kv_tokens`` is the KV capacity of one (decode) instance. NaN where undefined.
    """

    n_requests: int
    duration_s: float
    ttft_s: dict[str, float]
    tpot_s: dict[str, float]
    e2e_s: dict[str, float]
    output_tokens_per_s: float
    requests_per_s: float
    mean_decode_batch: float
    preemptions: int
    max_kv_tokens: int
    mean_in_system: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


