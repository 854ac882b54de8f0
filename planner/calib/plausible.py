"""End-to-end rows that cannot be right as read: a closed-loop TPOT below the bandwidth floor of the
batch the row states.

A decode step of C sequences reads at least the weights those C tokens touch (every dense weight,
the experts their routing reaches) and the KV cache of their contexts, and no step can read faster
than the accelerators' peak HBM bandwidth. ``decode_floor_s`` is that step on an ideal engine: the
step model of ``planner.perf`` with every efficiency at 1 and no overheads (``Efficiency()``), at the
row's concurrency and its mean context I + O/2. A measured TPOT below ``FLOOR_SHARE`` of it implies
more than 1/FLOOR_SHARE of the peak bandwidth, so the run did not hold the batch it states: in the
shipped silicon data such rows (gpt-oss-120b on H100 with vLLM 0.11.2 at 512 clients) also report
TTFTs of 20-460 s, the clients queueing for a running-sequence slot while a few sequences decode.
They are rejected from the fit and the scores and counted, as kernel rows implying more than 100% of
a peak are (``planner.calib.kernels``). The margin below 1 leaves room for the floor's own byte count
(the expected experts a batch touches). Rows with speculative decoding stated are not checked (a
verify step moves several tokens per sequence).

Rows marked ``spec_unstated`` (silicon runs attributed to speculative-decoding configs with no
acceptance recorded: ``planner.calib.silicon_layout``) are not plausible either: what they measure
is not a plain decode, and nothing says how much speculation gained. Rows marked ``duplicate`` (the
same measurement exported twice) are kept once, so no measurement is on both sides of the split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from planner.errors import PlannerError
from planner.hardware import HardwareDB, default_hardware
from planner.perf.shape import decode_shape
from planner.profile import Efficiency, Profile

FLOOR_SHARE = 0.8


def decode_floor_s(row: dict[str, Any], hw: HardwareDB, cache: dict) -> float | None:
    """Ideal-engine decode step at the row's concurrency and mean context (None when the row has no
    concurrency, or its model or parallelism cannot be built)."""
    from planner.deployment import make_deployment
    from planner.serving.prefill_time import step_s

    conc, isl, osl = row.get("concurrency"), row.get("isl"), row.get("osl")
    if any(not isinstance(v, int | float) or not math.isfinite(v) or v <= 0 for v in (conc, isl, osl)):
        return None
    try:
        acc = hw.get(str(row["accelerator"]))
        tp, pp, ep = int(row["tp"]), int(row.get("pp") or 1), int(row.get("ep") or 1)
        key = (str(row["model"]), acc.id, tp, pp, min(ep, tp), str(row.get("precision") or "bf16"),
               row.get("kv_dtype") or None, str(row.get("engine") or "vllm"), bool(row.get("dp_attn")))
        if key not in cache:
            ideal = Profile(engine=key[7], defaults=Efficiency())
            cache[key] = make_deployment(key[0], acc, tp=tp, pp=pp, ep=key[4], precision=key[5], kv_dtype=key[6],
                                         engine=ideal, hardware_db=hw, dp_attn=key[8])
        return float(step_s(cache[key], decode_shape(float(conc), float(isl) + float(osl) / 2.0)))
    except (PlannerError, KeyError, TypeError, ValueError):
        return None


def with_plausibility(df: pd.DataFrame, hw: HardwareDB | None = None) -> pd.DataFrame:
    """``df`` with ``tpot_floor_s`` (the ideal step of closed-loop TPOT rows, else NaN), ``plausible``
    (False where the measured TPOT is below ``FLOOR_SHARE`` of it, or the row is ``spec_unstated``) and
    ``rejected`` (why not: "below floor", "speculative", "duplicate", or "")."""
    hw = hw or default_hardware()
    cache: dict = {}
    floors = []
    for r in df.to_dict("records"):
        spec = r.get("spec_method")
        stated_spec = isinstance(spec, str) and spec.strip() != ""
        tpot = r.get("tpot_s")
        checked = not stated_spec and isinstance(tpot, int | float) and math.isfinite(tpot) and tpot > 0
        floor = decode_floor_s(r, hw, cache) if checked else None
        floors.append(np.nan if floor is None else floor)
    out = df.copy()
    out["tpot_floor_s"] = floors
    below = out["tpot_s"].to_numpy(dtype=float) < FLOOR_SHARE * out["tpot_floor_s"].to_numpy(dtype=float)
    spec = _flag(out, "spec_unstated")
    dup = _flag(out, "duplicate")
    below = np.nan_to_num(below, nan=False).astype(bool)
    out["plausible"] = ~below & ~spec & ~dup
    out["rejected"] = np.where(dup, "duplicate", np.where(spec, "speculative", np.where(below, "below floor", "")))
    return out.drop(columns=["spec_unstated", "duplicate"], errors="ignore")


def _flag(df: pd.DataFrame, col: str) -> np.ndarray:
    return df[col].fillna(False).astype(bool).to_numpy() if col in df else np.zeros(len(df), dtype=bool)
