"""The result of replaying a plan through the discrete-event simulator (plain data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class BucketCheck:
    """One bucket of the plan in the replay, over its measured requests (after the warm-up).

    ``attainment`` = share of requests with TTFT <= slo.ttft_s and TPOT <= slo.tpot_s (the limits
    set); a request that was not finished or could not be run misses. ``ttft_ok``/``tpot_ok`` are
    the shares meeting each limit alone; ``ttft_s``/``tpot_s`` the simulated latency at the SLO
    percentile (NaN when undefined). ``meets``: attainment >= required − tolerance. ``beyond_tail``:
    requests with prompts longer than the whole workload's at the SLO percentile, the longest any
    bucket's TTFT is planned for (``planner.workload.prompt_tail``): their TTFT may miss (they are at most
    the share the SLO lets miss, and the overall attainment is checked over every request), so
    ``attainment`` and ``ttft_ok`` count them as meeting TTFT; their TPOT still counts.
    """

    index: int
    isl: str
    osl: str
    requests: int
    attainment: float
    ttft_ok: float
    tpot_ok: float
    ttft_s: float
    tpot_s: float
    required: float
    tolerance: float
    meets: bool
    beyond_tail: int = 0


@dataclass(frozen=True)
class GroupCheck:
    """One group of the plan in the replay.

    ``requests`` routed to it; ``requests_per_s`` completed by it (prefill: prompts handed off) and
    ``tokens_per_s`` (output tokens of the requests it finished; prefill: prompt tokens) over its
    component's replay duration (first arrival to last completion); ``utilisation`` = engine busy
    time / (instances × duration) against the plan's ``planned_utilisation``. ``smallest_instances``:
    the fewest instances (others at planned counts) whose replay still meets the SLO in every bucket
    (None when not searched); ``searched`` says whether the search ran to the end.
    """

    label: str
    role: str
    accelerator: str
    instances: int
    gpus_per_instance: int
    requests: int
    requests_per_s: float
    tokens_per_s: float
    utilisation: float
    planned_utilisation: float
    preemptions: int
    smallest_instances: int | None
    searched: bool


@dataclass(frozen=True)
class Verification:
    """A plan replayed in simulation: per bucket, per group, overall, and how far it is over-provisioned.

    ``meets``: every bucket meets (see ``BucketCheck``). ``overprovision_ratio`` = planned GPUs /
    ``sufficient_gpus`` (the smallest per-group counts found, which ``smallest_meets`` says were
    replayed together and met the SLO); None when the planned counts already miss it.
    """

    scenario: str
    model: str
    seed: int
    n_requests: int
    measured_requests: int
    warmup_share: float
    slo: dict[str, Any]
    attainment: float
    meets: bool
    buckets: tuple[BucketCheck, ...]
    groups: tuple[GroupCheck, ...]
    planned_gpus: int
    sufficient_gpus: int | None
    overprovision_ratio: float | None
    smallest_meets: bool | None
    replays: int
    clipped: int
    rejected: int
    unfinished: int
    elapsed_s: float
    rules: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rules"], d["notes"] = list(self.rules), list(self.notes)
        return d
