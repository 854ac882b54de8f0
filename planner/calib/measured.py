"""Measured results in one schema, and readers that map published formats into it.

Schema (one row per measurement; CSV columns, SI units):

| column | meaning |
|---|---|
| model, accelerator | names the databases resolve (aliases allowed) |
| count | accelerators the measurement covers (the whole system; instances = count/(tp·pp)) |
| tp, pp, ep | parallelism of one instance (blank tp: the best over 1,2,4,8, as a benchmark submitter tunes it) |
| dp_attn | data-parallel attention across the TP GPUs (true/false, default false) |
| precision, kv_dtype | weight and KV-cache dtypes (bf16 fp16 fp8 int8 int4 fp4) |
| engine | vllm, sglang, trtllm (profiles) |
| isl, osl | mean input / output tokens per request |
| isl_p99 | p99 input tokens: inputs are lognormal with mean ``isl`` and this p99 (blank: every input is ``isl``) |
| concurrency | closed-loop clients (blank: offline or rate) |
| rate_rps | open-loop arrival rate of the system, over its count/(tp·pp) instances (blank: offline or concurrency) |
| output_tokens_per_s | whole-system output throughput |
| ttft_s, tpot_s | measured latency |
| stat | which statistic the latencies are: mean, p50, p90, p99 |
| source | where the row comes from |
| spec_method | optional: speculative decoding, mtp or eagle (blank: none) |
| spec_draft_tokens, spec_accept_length | draft tokens k per step, measured tokens per verify step |
| num_prompts | optional: prompts a closed-loop run sent (blank: the profile's ``bench_waves``) |
| max_seqs, token_budget, memory_fraction | optional: engine settings the run used (blank: the profile's) |

``mode`` is derived: ``offline`` (no concurrency, no rate), ``concurrency`` or ``rate``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from planner.calib.silicon_layout import kv_dtypes, repair
from planner.errors import PlannerError

COLUMNS = ("model", "accelerator", "count", "tp", "pp", "ep", "dp_attn", "precision", "kv_dtype", "engine", "isl",
           "osl", "concurrency", "rate_rps", "output_tokens_per_s", "ttft_s", "tpot_s", "stat", "source", "isl_p99",
           "ttft_limit_s", "tpot_limit_s")
REQUIRED = ("model", "accelerator", "engine", "isl", "osl")
METRICS = ("output_tokens_per_s", "ttft_s", "tpot_s")
_DATASETS = Path(__file__).resolve().parents[1] / "data" / "mlperf_datasets.csv"


def mode_of(row: dict) -> str:
    """How a row was measured: at a fixed client ``concurrency`` (closed loop), at a request ``rate``
    (open loop), or ``offline``; a row that states both a concurrency and a rate is refused (which of
    the two the figures belong to is unknown)."""
    if _num(row.get("concurrency")) is not None and _num(row.get("rate_rps")) is not None:
        raise PlannerError("concurrency/rate_rps: expected one of the two (a closed-loop run at a client "
                           f"concurrency, or an open-loop run at a rate), got {row.get('concurrency')!r} and "
                           f"{row.get('rate_rps')!r}")
    if _num(row.get("concurrency")) is not None:
        return "concurrency"
    if _num(row.get("rate_rps")) is not None:
        return "rate"
    return "offline"


def _num(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def read_measured(path: str | Path) -> pd.DataFrame:
    """Read a measured CSV in our schema; missing required columns fail with their names."""
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except FileNotFoundError:
        raise PlannerError(f"measured file {p}: file not found") from None
    except pd.errors.EmptyDataError:
        raise PlannerError(f"measured file {p}: empty file, expected a CSV with columns {', '.join(REQUIRED)}") \
            from None
    except (pd.errors.ParserError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise PlannerError(f"measured file {p}: not a readable CSV ({exc.__class__.__name__})") from None
    df.columns = [str(c).strip() for c in df.columns]
    for c in df.columns:  # pandas renames a repeated header "x" to "x.1": which of the two is meant is unknown
        base, _, tail = c.rpartition(".")
        if tail.isdigit() and base in df.columns and base in COLUMNS:
            raise PlannerError(f"measured file {p}: column {base} appears twice")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PlannerError(f"measured file {p}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    if not any(m in df.columns for m in METRICS):
        raise PlannerError(f"measured file {p}: needs at least one of {', '.join(METRICS)}")
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    if df.empty:
        raise PlannerError(f"measured file {p}: no rows")
    return df


def _need(df: pd.DataFrame, path: str | Path, cols: tuple[str, ...]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PlannerError(f"measured file {path}: missing column(s) {', '.join(missing)} for this format")


MAX_FIGURE = 1e12  # no count, length, rate or latency in a measured file is larger


def _numeric(df: pd.DataFrame, path: str | Path, cols: tuple[str, ...], *, required: tuple[str, ...] = ()) -> None:
    """Turn ``cols`` into numbers in place; the first text, negative or absurd cell fails naming its line and
    column. Blank cells stay NaN, except in ``required`` columns, where they fail too."""
    for col in cols:
        raw = df[col]
        vals = pd.to_numeric(raw, errors="coerce")
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        bad = (~blank & ~(vals.between(0, MAX_FIGURE))) | (blank & (col in required))
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            got = "a blank cell" if blank.iloc[i] else repr(str(raw.iloc[i])[:40])
            raise PlannerError(f"measured file {path} line {df.index[i] + 2}: {col}: expected a number in "
                               f"[0, {MAX_FIGURE:g}] (got {got})")
        df[col] = vals


def _precision(val: object, default: str = "bf16") -> str:
    v = str(val).strip().lower() if isinstance(val, str) else ""
    return {"fp8": "fp8", "fp4": "fp4", "nvfp4": "fp4", "int4": "int4", "bf16": "bf16", "bfloat16": "bf16",
            "fp16": "fp16", "float16": "fp16", "int8": "int8", "w8a8": "int8", "uint4": "int4",
            "mxfp4": "fp4"}.get(v, default)


def _mlperf_precision(val: object, accelerator: object) -> str:
    """Weight dtype of an MLPerf row. Only quantised labels are taken as stated: the v4.1 results
    label nearly every run "fp16" (Hopper, Blackwell, AMD and Ada alike), and v5.0 leaves the field
    blank, while the calibration README records that Hopper and AMD runs are FP8 and Blackwell runs
    FP4 (NVIDIA's and AMD's own descriptions of their submissions). A 16- or 32-bit label, "UNSET" or
    a blank therefore takes that family default, judged from the accelerator's name."""
    stated = _precision(val, "")
    if stated in ("fp8", "fp4", "int8", "int4"):
        return stated
    name = str(accelerator).upper()
    blackwell = any(k in name for k in ("B200", "B300", "BLACKWELL", "GB200", "GB300"))
    return "fp4" if blackwell else "fp8"


def from_aiconfigurator_silicon(path: str | Path) -> pd.DataFrame:
    """aiconfigurator silicon rows (aggregated mode) in our schema.

    The concurrency is the benchmark's client count (``silicon_concurrency`` in the provenance,
    else ``batch_size`` × attention DP); TTFT/TPOT are means (ms). Attention data-parallel rows
    (attention_dp_size > 1 with tp_size 1) map to one instance of dp GPUs with ``dp_attn``: their
    ``batch_size`` counts one attention rank's clients, so the instance serves batch_size × dp.
    Rows whose export squared the world size are read as run (``planner.calib.silicon_layout``).
    Disaggregated rows (pools of workers per role) are left out.
    """
    s = pd.read_csv(path)
    _need(s, path, ("mode", "model_path", "system", "backend", "precision", "isl", "osl", "batch_size", "tp_size",
                    "pp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size", "silicon_ttft_ms",
                    "silicon_tpot_ms", "id"))
    s = s[s["mode"] == "agg"].copy()
    _numeric(s, path, ("isl", "osl", "batch_size", "tp_size", "pp_size", "attention_dp_size", "moe_tp_size",
                       "moe_ep_size", "silicon_ttft_ms", "silicon_tpot_ms"),
             required=("isl", "osl", "batch_size", "tp_size"))
    # attention DP rows run attention with tp_size 1 on each of dp GPUs and the MoE over all of them:
    # one instance of dp GPUs with data-parallel attention (rows recording both TP and DP for attention
    # are left out, as recorded, so the seeded split of the rows after them stays as it was)
    s = s[(s["attention_dp_size"].fillna(1).clip(lower=1) == 1) | (s["tp_size"] == 1)]
    # the export's squared world sizes and per-GPU batches, repaired (planner.calib.silicon_layout)
    s = repair(s)
    s = s[s["moe_tp_size"].fillna(s["gpus"]).replace(0, 1) * s["moe_ep_size"].fillna(1).replace(0, 1) == s["gpus"]]
    prec = s["precision"].map(_precision)
    kv = np.where(prec.isin(["fp8", "fp4"]) & (s["backend"] == "trtllm"), "fp8", "bf16")
    stated = s["id"].astype(str).map(kv_dtypes())  # the InferenceX launch scripts' KV dtype
    kv = np.where(stated.notna(), stated, kv)
    return pd.DataFrame({
        "model": s["model_path"], "accelerator": s["system"], "count": s["gpus"] * s["pp_size"].fillna(1),
        "tp": s["gpus"], "pp": s["pp_size"].fillna(1), "ep": s["ep"],
        "dp_attn": s["dp"] > 1, "precision": prec,
        "kv_dtype": kv, "engine": s["backend"], "isl": s["isl"], "osl": s["osl"], "concurrency": s["clients"],
        "rate_rps": np.nan, "output_tokens_per_s": np.nan, "ttft_s": s["silicon_ttft_ms"] / 1e3,
        "tpot_s": s["silicon_tpot_ms"] / 1e3, "stat": "mean",
        "source": "aiconfigurator_silicon_sample.csv id=" + s["id"].astype(str),
        "spec_unstated": s["spec_unstated"].astype(bool), "duplicate": s["duplicate"].astype(bool),
    }).reset_index(drop=True)


def _datasets() -> pd.DataFrame:
    if not _DATASETS.is_file():
        raise PlannerError(f"{_DATASETS}: MLPerf dataset lengths are missing")
    return pd.read_csv(_DATASETS)


def _mixed(accelerator: object) -> bool:
    """A heterogeneous system: several accelerator types listed with their counts, '... (x32), ... (x16)'."""
    return isinstance(accelerator, str) and "," in accelerator and "(x" in accelerator


def from_mlperf(path: str | Path, scenarios: tuple[str, ...] = ("Offline",),
                divisions: tuple[str, ...] | None = ("closed",)) -> pd.DataFrame:
    """MLPerf Inference rows: system throughput (tokens/s per accelerator × count), dataset mean
    lengths from ``planner/data/mlperf_datasets.csv``; TensorRT submissions map to trtllm, others
    (vLLM, ROCm) to vllm; Hopper/AMD FP8 runs use an FP8 KV cache as the submissions describe.
    Mixed-accelerator systems (one row naming several accelerator types, e.g. MI300X and MI325X
    pools) are left out: a row is one instance type.

    Only the Closed division is read by default (``divisions``; None: every row, with its ``division``
    column): Closed runs the reference model on the reference dataset to the accuracy target, which is
    the workload predicted here, while the Open division may change the model, its quantisation and
    the generation (MLPerf Inference rules, "Divisions"), so its tokens/s are of another workload."""
    m = pd.read_csv(path)
    _need(m, path, ("scenario", "model_norm", "accelerator", "accel_count", "tokens_per_s_per_accel", "weight_dtype",
                    "software", "version", "submitter", "system", "result_valid"))
    m = m[m["scenario"].isin(scenarios) & (m["result_valid"].fillna("VALID") == "VALID")].copy()
    # the run's division, lower case ("closed" where the file leaves it blank or has no such column)
    raw = m["division"] if "division" in m.columns else pd.Series("closed", index=m.index)
    m["division"] = [d.strip().lower() if isinstance(d, str) and d.strip() else "closed" for d in raw]
    if divisions is not None:
        m = m[m["division"].isin(divisions)]
    _numeric(m, path, ("accel_count", "tokens_per_s_per_accel"))
    ds = _datasets()
    rows = []
    for r in m.to_dict("records"):
        match = ds[[str(r["model_norm"]).startswith(str(p)) for p in ds["model_norm_prefix"]]]
        if match.empty or not _num(r.get("tokens_per_s_per_accel")) or _mixed(r.get("accelerator")):
            continue
        d = match.sort_values("model_norm_prefix", key=lambda x: x.str.len(), ascending=False).iloc[0]
        if not _num(d.get("mean_input_tokens")) or not _num(d.get("mean_output_tokens")):
            continue
        software = str(r.get("software", "")).lower()
        nvidia = "nvidia" in str(r.get("accelerator", "")).lower()
        engine = "trtllm" if ("tensorrt" in software or (nvidia and "vllm" not in software)) else "vllm"
        prec = _mlperf_precision(r.get("weight_dtype"), r.get("accelerator"))
        # accel_count is per node: a "2x8xH100" system has accel_count 8 and nodes 2, and its
        # tokens_per_s_per_accel is the system result over accel_count (41,672 = 5,209.1 x 8), so the
        # system throughput is per_accel x accel_count and the system has accel_count x nodes accelerators.
        nodes = _num(r.get("nodes")) or 1.0
        if r["scenario"] == "Server":
            rows.extend(_server_row(r, d, engine, prec, nodes))
            continue
        rows.append({
            "model": r["model_norm"], "accelerator": r["accelerator"], "count": float(r["accel_count"]) * nodes,
            "tp": np.nan,
            "pp": 1, "ep": 1, "precision": prec, "kv_dtype": "fp8" if prec in ("fp8", "fp4") else "bf16",
            "engine": engine, "isl": d["mean_input_tokens"], "osl": d["mean_output_tokens"], "concurrency": np.nan,
            "rate_rps": np.nan, "output_tokens_per_s": float(r["tokens_per_s_per_accel"]) * float(r["accel_count"]),
            "ttft_s": np.nan, "tpot_s": np.nan, "stat": "mean",
            "source": f"mlperf {r['version']} {r['submitter']} {r['system']} {r['model_norm']} {r['scenario']}",
            "version": r["version"], "division": r["division"],
        })
    return pd.DataFrame(rows)


def _server_row(r: dict, d: pd.Series, engine: str, prec: str, nodes: float) -> list[dict]:
    """An MLPerf Server run as an open-loop row: Poisson arrivals at ``target_qps`` spread over the
    system's instances, the dataset's input lengths as a lognormal (mean and p99 from the dataset
    file), measured p99 TTFT and p99 TPOT (LoadGen's constraints are on the p99), and those constraints
    (``ttft_limit_s``, ``tpot_limit_s``: the submitter raised ``target_qps`` until the next step would
    break one, so ``planner.validate`` predicts the run at the model's own highest rate meeting them).
    Runs without the latency figures (older logs) or without a dataset p99 are left out."""
    qps, ttft, tpot = _num(r.get("target_qps")), _num(r.get("p99_ttft_ms")), _num(r.get("p99_tpot_ms"))
    p99 = _num(d.get("p99_input_tokens"))
    ttft_limit, tpot_limit = _num(r.get("ttft_constraint_ms")), _num(r.get("tpot_constraint_ms"))
    if not (qps and ttft and tpot and p99):
        return []
    return [{
        "model": r["model_norm"], "accelerator": r["accelerator"], "count": float(r["accel_count"]) * nodes,
        "tp": np.nan, "pp": 1, "ep": 1, "precision": prec, "kv_dtype": "fp8" if prec in ("fp8", "fp4") else "bf16",
        "engine": engine, "isl": d["mean_input_tokens"], "osl": d["mean_output_tokens"], "concurrency": np.nan,
        "rate_rps": qps, "output_tokens_per_s": np.nan, "ttft_s": ttft / 1e3, "tpot_s": tpot / 1e3, "stat": "p99",
        "isl_p99": p99, "ttft_limit_s": ttft_limit / 1e3 if ttft_limit else np.nan,
        "tpot_limit_s": tpot_limit / 1e3 if tpot_limit else np.nan,
        "source": f"mlperf {r['version']} {r['submitter']} {r['system']} {r['model_norm']} Server",
        "version": r["version"], "division": r["division"],
    }]


def from_vllm_bench(path: str | Path) -> pd.DataFrame:
    """A ``vllm bench serve --save-result`` JSON in our schema. The deployment comes from the
    ``planner_*`` keys that ``planner emit``'s benchmark command passes with ``--metadata``; the lengths
    are the measured means (total tokens / completed requests); the latencies the percentile named by
    ``planner_stat`` (``p99_ttft_ms``), else the means. The request rate went to the group's Service, so
    the row holds it per instance (rate / (count / (tp·pp))), as ``validate`` predicts one instance."""
    import json

    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise PlannerError(f"measured file {p}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PlannerError(f"measured file {p}: not a JSON benchmark result") from None
    if not isinstance(raw, dict):
        raise PlannerError(f"measured file {p}: expected the JSON object `vllm bench serve --save-result` writes")
    meta = {**(raw.get("metadata") or {}), **raw}
    need = [k for k in ("planner_model", "planner_accelerator", "planner_engine", "completed") if k not in meta]
    if need:
        raise PlannerError(f"measured file {p}: missing {', '.join(need)}; run the benchmark command from the "
                           "emitted README (it passes the deployment with --metadata)")
    done = _num(meta.get("completed")) or 0
    if done <= 0:
        raise PlannerError(f"measured file {p}: no completed requests")
    stat = str(meta.get("planner_stat") or "mean")
    pct = stat[1:] if stat.startswith("p") else None

    def lat(metric: str) -> float:
        key = f"p{pct}_{metric}_ms" if pct else f"mean_{metric}_ms"
        val = _num(meta.get(key))
        return val / 1e3 if val is not None else math.nan

    if pct and _num(meta.get(f"p{pct}_ttft_ms")) is None:
        stat = "mean"
        pct = None
    rate = _num(meta.get("request_rate"))
    count, tp, pp = _num(meta.get("planner_count")), _num(meta.get("planner_tp")), _num(meta.get("planner_pp")) or 1
    instances = count / (tp * pp) if count and tp else 1.0
    if rate is not None:  # the benchmark loads the group's Service; validate predicts per instance
        rate /= instances
    row = {"model": meta["planner_model"], "accelerator": meta["planner_accelerator"],
           "count": _num(meta.get("planner_count")), "tp": _num(meta.get("planner_tp")),
           "pp": _num(meta.get("planner_pp")) or 1, "ep": _num(meta.get("planner_ep")) or 1,
           "dp_attn": str(meta.get("planner_dp_attn", "false")).lower() == "true",
           "precision": meta.get("planner_precision", "bf16"), "kv_dtype": meta.get("planner_kv_dtype"),
           "engine": meta["planner_engine"], "isl": (_num(meta.get("total_input_tokens")) or 0) / done,
           "osl": (_num(meta.get("total_output_tokens")) or 0) / done,
           "concurrency": _num(meta.get("max_concurrency")) if rate is None else np.nan,
           "rate_rps": rate if rate is not None else np.nan,
           "output_tokens_per_s": _num(meta.get("output_throughput")), "ttft_s": lat("ttft"), "tpot_s": lat("tpot"),
           "stat": stat, "source": f"vllm bench serve {p.name}"}
    return pd.DataFrame([row], columns=list(COLUMNS))
