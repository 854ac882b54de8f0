"""Repairs to the parallel layout and client count of aiconfigurator silicon rows.

Two export faults in ``aiconfigurator_silicon_sample.csv`` (ai-dynamo/aiconfigurator@095f58a,
``aic-core/src/aiconfigurator_core/systems/silicon_sample.csv``) change what a row says it ran:

- **Squared world size.** 356 aggregated rows on 8-GPU nodes (B200, H200, B300 HGX) record a world
  of k² GPUs for a run on k: ``tp_size`` 64 with ``moe_tp_size`` 8 × ``moe_ep_size`` 8, ``tp_size``
  16 with 4 × 4, ``attention_dp_size`` 64 with 8 × 8, or ``tp_size`` 4 × ``attention_dp_size`` 4 with
  EP 16. An aggregated single-node benchmark cannot run on more GPUs than its node has, and the
  rows are the k-GPU, EP-k runs: against the rows of the same engine, system, model, precision,
  lengths and clients recorded as TP k × EP k, their TPOT is 1.00× (median of 59 pairs at k = 8 and
  60 at k = 4). They are read as k GPUs with expert parallelism k, data-parallel attention where the
  row records attention DP.
- **Per-GPU batch.** 31 rows of aiconfigurator's gap-analysis runs record ``batch_size`` as the
  clients per GPU (``c224_tp4`` with ``batch_size`` 56). The row's provenance names the benchmark's
  client count (``silicon_concurrency=224``), which is what the closed-loop model needs; where it is
  present it is the concurrency, otherwise ``batch_size`` × attention DP.

And one protocol the rows do not state. The rows of the InferenceX sweeps (provenance ``db-dump``,
the dated ``source_file=2026-..csv`` exports and the Kimi gap analysis; lengths on InferenceX's grid
1024/8192) ran SemiAnalysis InferenceX's client (SemiAnalysisAI/InferenceX,
``benchmarks/benchmark_lib.sh`` and ``utils/bench_serving/benchmark_serving.py``): ``--dataset-name
random --random-range-ratio 0.8 --num-prompts 10×conc --ignore-eos``, so each prompt's input and
output lengths are drawn uniformly from the integers ⌊0.8·L⌋..L and the mean length is
(⌊0.8·L⌋ + L)/2 ≈ 0.9·L, not the L the row names. The schema's ``isl``/``osl`` are means, so those
rows carry the mean. aiconfigurator's own gap-analysis runs (``aic-auto-gap-analysis``) state no
such spread and keep their lengths.

Nor do the rows state their KV-cache dtype, which their launch scripts set:
``planner/data/silicon_kv_dtype.csv`` (``scripts/gen_silicon_kv_dtype.py``) holds, for each InferenceX
row, the dtype of the InferenceX script of its model, precision, GPU and framework at its measurement
date. vLLM's Llama-3.1-70B runs and SGLang's DeepSeek-R1 runs on B200, for instance, set an FP8 KV
cache (``--kv-cache-dtype fp8`` / ``fp8_e4m3``) that a 16-bit default would double, and TensorRT-LLM's
gpt-oss runs on H200 set none (16-bit, where an FP8 rule for quantised weights would halve it).

Nor do the rows state speculative decoding. ``planner/data/silicon_speculative.csv``
(``scripts/gen_silicon_speculative.py``) lists the InferenceX rows whose image, date and point belong
only to speculative (MTP) sweep configs: TensorRT-LLM 1.2.0rc6.post3 was the image of
``dsr1-fp4-b200-trt-mtp`` and ``dsr1-fp8-b200-trt-mtp`` alone, and those rows run 1.3x faster than
the model of a plain decode (up to 1.76x at 4 clients: speculation pays most at small batches).
With no acceptance rate recorded they cannot be predicted, so they are marked ``spec_unstated`` and
left out of the fit and the scores (``planner.calib.plausible``), and counted.

And about one aggregated row in six is a measurement seen before: the dated exports
(``source_file=2026-03-25.csv`` and ``2026-04-06.csv``) and the ``db-dump`` repeat each other's runs
with every figure identical (``DUPLICATE_KEY``). A seeded half/half split would put about half of
those pairs on both sides, so the hold-out would score measurements the fit saw. The first of each
set is kept; the repeats are marked ``duplicate`` and left out of fit and scores.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from planner.errors import PlannerError


def node_gpus(system: str) -> int | None:
    """GPUs in one scale-up domain of ``system`` (hardware_db ``scaleup.domain_size``), None if unknown."""
    from planner.hardware import get_accelerator

    try:
        return get_accelerator(str(system)).scaleup_domain
    except PlannerError:
        return None


def recorded_clients(source: pd.Series) -> pd.Series:
    """``silicon_concurrency=N`` from each row's provenance (NaN where it is absent)."""
    return pd.to_numeric(source.astype(str).str.extract(r"silicon_concurrency=(\d+)")[0], errors="coerce")


def _nine(v: float) -> float:
    return float(f"{v:.9g}") if np.isfinite(v) else v


def squared_world(gpus: float, moe_tp: float, moe_ep: float, domain: int | None) -> int | None:
    """k when a row records k² GPUs for a k-GPU run (the world exceeds the node, is a perfect square
    k² with k within the node, and the MoE layout covers it); None when the row is as recorded."""
    if domain is None or not gpus > domain:
        return None
    k = math.isqrt(int(gpus))
    if k * k != int(gpus) or k > domain:
        return None
    if not (np.isfinite(moe_tp) and np.isfinite(moe_ep)) or moe_tp * moe_ep != gpus:
        return None
    return k


def repair(s: pd.DataFrame) -> pd.DataFrame:
    """Aggregated silicon rows with ``gpus``, ``dp`` (attention ranks), ``ep`` and ``clients`` as run.

    ``s`` holds the CSV's columns; the result adds those four, ``layout_repaired``, ``inferencex``,
    ``spec_unstated`` and ``duplicate`` (bool), with the InferenceX rows' ``isl``/``osl`` replaced by
    their mean lengths."""
    s = s.copy()
    dp = s["attention_dp_size"].fillna(1).clip(lower=1)
    gpus = s["tp_size"] * dp
    ep = s["moe_ep_size"].fillna(1).replace(0, 1)
    domains = {sys_: node_gpus(sys_) for sys_ in s["system"].astype(str).unique()}
    fixed = [squared_world(g, mt, me, domains[str(sy)])
             for g, mt, me, sy in zip(gpus, s["moe_tp_size"], s["moe_ep_size"], s["system"], strict=True)]
    k = pd.Series([np.nan if f is None else float(f) for f in fixed], index=s.index)
    rep = k.notna()
    s["layout_repaired"] = rep
    s["gpus"] = np.where(rep, k, gpus)
    s["dp"] = np.where(rep & (dp > 1), k, np.where(rep, 1.0, dp))
    s["ep"] = np.where(rep, k, ep)
    s["tp_size"] = np.where(rep & (dp > 1), 1.0, np.where(rep, k, s["tp_size"]))
    s["moe_tp_size"] = np.where(rep, 1.0, s["moe_tp_size"])
    s["moe_ep_size"] = np.where(rep, k, s["moe_ep_size"])
    clients = recorded_clients(s["silicon_data_source"]) if "silicon_data_source" in s else pd.Series(np.nan, s.index)
    s["clients"] = clients.fillna(s["batch_size"] * dp)
    ix = inferencex_run(s["silicon_data_source"] if "silicon_data_source" in s else pd.Series("", s.index),
                        s["isl"], s["osl"])
    s["inferencex"] = ix
    s["isl"] = np.where(ix, mean_length(s["isl"]), s["isl"])
    s["osl"] = np.where(ix, mean_length(s["osl"]), s["osl"])
    s["spec_unstated"] = s["id"].astype(str).isin(speculative_ids()) if "id" in s else False
    key = [c for c in DUPLICATE_KEY if c in s]
    if "silicon_tpot_ms" in key:  # the exports differ in the last bits of a figure: compare 9 digits
        cmp = s[key].apply(lambda c: c.map(_nine) if c.dtype.kind == "f" else c)
        s["duplicate"] = cmp.duplicated(keep="first").to_numpy()
    else:
        s["duplicate"] = False
    return s


@lru_cache(maxsize=1)
def speculative_ids() -> frozenset[str]:
    """Ids of the silicon rows attributed to speculative-decoding sweep configs."""
    path = Path(__file__).resolve().parents[1] / "data" / "silicon_speculative.csv"
    if not path.is_file():
        raise PlannerError(f"{path}: the speculative-run table is missing")
    return frozenset(pd.read_csv(path, comment="#")["id"].astype(str))


DUPLICATE_KEY = ("backend", "system", "precision", "isl", "osl", "clients", "gpus", "silicon_ttft_ms",
                 "silicon_tpot_ms")
"""One measurement: TTFT and TPOT equal to every printed digit at the same engine, system, precision,
lengths, clients and GPUs (the exports relabel the model, DeepSeek-R1 as DeepSeek-V3, and the version,
``nightly-dev`` for ``nightly-dev-20260216-d3bae71e``, so neither is part of the key)."""
@lru_cache(maxsize=1)
def kv_dtypes() -> dict[str, str]:
    """KV-cache dtype (fp8, or bf16 where the script leaves it to the engine) by silicon row id."""
    path = Path(__file__).resolve().parents[1] / "data" / "silicon_kv_dtype.csv"
    if not path.is_file():
        raise PlannerError(f"{path}: the KV-dtype table is missing")
    t = pd.read_csv(path, comment="#")
    return {str(i): ("fp8" if str(k).startswith("fp8") else "bf16")
            for i, k in zip(t["id"], t["kv_dtype"], strict=True)}


INFERENCEX_RANGE_RATIO = 0.8
INFERENCEX_LENGTHS = (1024.0, 8192.0)


def inferencex_run(source: pd.Series, isl: pd.Series, osl: pd.Series) -> pd.Series:
    """True for rows of the InferenceX sweeps (see the module docstring)."""
    src = source.astype(str)
    ours = src.str.contains("aic-auto-gap-analysis", regex=False)
    grid = isl.isin(INFERENCEX_LENGTHS) & osl.isin(INFERENCEX_LENGTHS)
    return grid & ~ours


def mean_length(nominal: pd.Series, ratio: float = INFERENCEX_RANGE_RATIO) -> pd.Series:
    """Mean of the integers uniform on ⌊ratio·L⌋..L (benchmark_serving's ``sample_uniform``)."""
    return (np.floor(nominal * ratio) + nominal) / 2.0
