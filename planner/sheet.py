"""Capacity spreadsheets: a sheet of scenarios in, a sheet of plans out.

Each row of the input (XLSX or CSV) is one scenario in flat columns:

| column | example | meaning |
|---|---|---|
| name | chat-eu | label, copied to the output |
| model | llama-3.1-70b | required |
| rate_rps | 20 | required |
| input | lognormal:mean=1200,p99=6000 | required: a length (tokens) or distribution |
| output | 350 | required |
| ttft_s, tpot_s | 1.5, 0.05 | at least one |
| percentile | 99 | default 99 |
| precision, kv_dtype, engine | fp8, fp8, vllm | optional |
| accelerators | H100-SXM, H200-SXM | optional, comma-separated |
| budget_per_hour | 100 | optional |
| arrival_cv, target_utilisation, spare_instances | 1.0, 0.9, 1 | optional, as in a scenario |
| objective, disaggregation | cost, off | optional |
| availability, prices | H100-SXM: 32, H200-SXM: 8 | optional, name: number pairs |
| buckets_isl, buckets_osl | 4, 4 | optional |

Any other column is an error naming it (a misspelt column is never silently ignored); the columns
``plan_sheet`` writes (status, cost_per_hour, ...) are dropped, so an output sheet can be planned again.
A text cell in a numeric column marks only its own row invalid, in CSV and XLSX alike.

The output keeps the input columns and adds status, cost, GPUs, the chosen groups, predicted
latency, or the reason a row is infeasible or invalid (one bad row never stops the sheet).
"""

from __future__ import annotations

import difflib
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError, PlannerError
from planner.files import write_atomic

REQUIRED = ("model", "rate_rps", "input", "output")
TEXT = ("name", "model", "input", "output", "precision", "kv_dtype", "engine", "objective", "disaggregation")
NUMBERS = ("rate_rps", "ttft_s", "tpot_s", "percentile", "budget_per_hour", "arrival_cv", "target_utilisation",
           "spare_instances", "buckets_isl", "buckets_osl")
LISTS = ("accelerators", "availability", "prices")
COLUMNS = (*TEXT, *NUMBERS, *LISTS)
# what plan_sheet writes: a sheet of plans read back in is a sheet of scenarios (these are recomputed)
OUTPUT_COLUMNS = ("status", "cost_per_hour", "cost_per_million_output_tokens", "total_gpus", "groups",
                  "predicted_ttft_s", "predicted_tpot_s", "reason")
MAX_ROWS = 5000
_FORMULA_START = ("=", "+", "-", "@")


def _read(path: Path) -> pd.DataFrame:
    """The sheet's rows as a frame of its scenario columns; unknown columns fail naming the column."""
    p = Path(path)
    if not p.is_file():
        raise PlannerError(f"sheet {p}: file not found")
    try:
        if p.suffix.lower() in (".xlsx", ".xlsm"):
            df = pd.read_excel(p, sheet_name=0)
        else:  # text cells as written, so one bad cell cannot turn its whole column into text
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line
        raise PlannerError(f"sheet {p}: cannot read ({exc.__class__.__name__}: {exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    for c in NUMBERS:  # each numeric cell typed on its own, as a spreadsheet types it
        if c in df.columns:
            df[c] = df[c].map(_maybe_number).astype(object)
    df = df[[c for c in df.columns if not (c.startswith("Unnamed:") and _blank_column(df[c]))]]
    df = df.drop(columns=[c for c in OUTPUT_COLUMNS if c in df.columns])
    _check_columns(list(df.columns), p)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PlannerError(f"sheet {p}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise PlannerError(f"sheet {p}: no rows")
    if len(df) > MAX_ROWS:
        raise PlannerError(f"sheet {p}: {len(df):,} rows; expected at most {MAX_ROWS:,} (split the sheet)")
    return df


def _maybe_number(v: Any) -> Any:
    """A text cell that reads as a finite number becomes that number; blank becomes NaN (no value); other
    text stays text, "nan" and "inf" included, so that the field's check refuses it rather than taking
    a written "nan" for a blank cell."""
    if not isinstance(v, str):
        return v
    if not v.strip():
        return math.nan
    try:
        f = float(v)
    except ValueError:
        return v
    return f if math.isfinite(f) else v


def _blank_column(col: pd.Series) -> bool:
    return bool(col.map(lambda v: _cell({"v": v}, "v") is None).all())


def _check_columns(columns: list[str], p: Path) -> None:
    """Refuse a column the sheet format does not know (it would be silently ignored) or one given twice."""
    for c in columns:
        base = c.split(".")[0]
        if c not in COLUMNS:
            if base in COLUMNS:  # pandas renames a repeated header "x" to "x.1"
                raise PlannerError(f"sheet {p}: column {base} appears twice")
            hint = difflib.get_close_matches(c, COLUMNS, n=1)
            did = f"did you mean {hint[0]}?" if hint else f"known: {', '.join(COLUMNS)}"
            raise PlannerError(f"sheet {p}: unknown column {c[:80]!r} ({did})")


def _cell(row: dict, key: str) -> Any:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
        return None
    return v.strip() if isinstance(v, str) else v


def _number(row: dict, key: str, where: str) -> float | None:
    """A numeric cell as a number (text such as '1.5' accepted); text that is no number fails naming the cell."""
    v = _cell(row, key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise InputError(key, "a number", v, where=where)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise InputError(key, "a number", v, where=where) from None
    if not isinstance(v, (int, float)):
        raise InputError(key, "a number", v, where=where)
    return float(v)


def _pairs(row: dict, key: str, where: str, integer: bool) -> dict[str, Any] | None:
    """``H100-SXM: 32, H200-SXM: 8`` (or ``=`` for ``:``, ``;`` for ``,``) as a mapping name -> number."""
    v = _cell(row, key)
    if v is None:
        return None
    out: dict[str, Any] = {}
    for part in str(v).replace(";", ",").split(","):
        if not part.strip():
            continue
        name, sep, val = part.replace("=", ":").rpartition(":")
        try:
            num = float(val)
        except ValueError:
            num = math.nan
        if not sep or not name.strip() or not math.isfinite(num) or (integer and num != int(num)):
            kind = "a whole number" if integer else "a number"
            raise InputError(key, f"name: {kind} pairs such as H100-SXM: 32, H200-SXM: 8", v, where=where)
        out[name.strip()] = int(num) if integer else num
    return out


def row_to_scenario(row: dict, where: str = "row") -> dict[str, Any]:
    """A flat sheet row as a scenario document (``planner.scenario.parse_scenario`` validates it);
    a numeric cell holding text fails here, naming the row and column."""
    nums = {k: _number(row, k, where) for k in NUMBERS if k != "percentile"}
    pct = _cell(row, "percentile")  # p99 as in a scenario file, or a number
    if isinstance(pct, str) and pct.strip().lower().startswith("p"):
        from planner.workload import SLO

        try:
            nums["percentile"] = SLO.parse_percentile(pct)
        except InputError:
            raise InputError("percentile", "p50, p90, p95, p99, p99.9 or a number", pct, where=where) from None
    else:
        nums["percentile"] = _number(row, "percentile", where)
    doc: dict[str, Any] = {
        "model": str(_cell(row, "model") or ""),
        "workload": {"rate_rps": nums["rate_rps"], "input": str(_cell(row, "input")),
                     "output": str(_cell(row, "output"))},
        "slo": {k: nums[k] for k in ("ttft_s", "tpot_s", "percentile") if nums[k] is not None},
    }
    if nums["arrival_cv"] is not None:
        doc["workload"]["arrival_cv"] = nums["arrival_cv"]
    for key in ("precision", "kv_dtype", "engine", "name", "objective", "disaggregation"):
        if _cell(row, key) is not None:
            doc[key] = str(_cell(row, key))
    if _cell(row, "accelerators") is not None:
        doc["accelerators"] = [a.strip() for a in str(_cell(row, "accelerators")).split(",") if a.strip()]
    for key in ("budget_per_hour", "target_utilisation"):
        if nums[key] is not None:
            doc[key] = nums[key]
    if nums["spare_instances"] is not None:
        doc["redundancy"] = {"spare_instances": nums["spare_instances"]}
    buckets = {axis: nums[f"buckets_{axis}"] for axis in ("isl", "osl") if nums[f"buckets_{axis}"] is not None}
    if buckets:
        doc["buckets"] = buckets
    for key, integer in (("availability", True), ("prices", False)):
        pairs = _pairs(row, key, where, integer)
        if pairs is not None:
            doc[key] = pairs
    return doc


def plan_sheet(src: str | Path, dst: str | Path | None = None, progress: Callable[[], Any] | None = None,
               hw: Any = None, workers: int | None = 1, scheduler: str | None = None,
               hardware_paths: Sequence[str | Path] = ()) -> pd.DataFrame:
    """Plan every row of ``src``; write the result sheet to ``dst`` (XLSX or CSV) when given. A bad row is
    marked invalid; the others are planned. ``workers``/``scheduler`` as in ``batch.run_jobs`` (default:
    serially here); the shipped hardware plus ``hardware_paths``, or ``hw`` itself when serial."""
    from planner.batch import check_workers, make_job, plan_job, run_jobs

    check_workers(workers, scheduler)
    df = _read(Path(src))
    records = df.to_dict("records")
    results: list[dict[str, Any] | None] = [None] * len(records)
    jobs, at = [], []
    for i, row in enumerate(records):
        where = f"row {i + 2}"
        try:
            jobs.append(make_job(row_to_scenario(row, where), where, Path(src).parent, hardware_paths))
            at.append(i)
        except PlannerError as exc:
            results[i] = {"status": "invalid", "reason": str(exc)}
            if progress is not None:
                progress()
    if hw is not None and (scheduler is not None or workers != 1):
        raise PlannerError("plan_sheet: a live hardware database cannot go to worker processes; "
                           "give hardware_paths instead of hw")
    if hw is not None:
        rows = []
        for j in jobs:
            rows.append(plan_job(j, hw))
            if progress is not None:
                progress()
    else:
        rows = run_jobs(jobs, workers=workers, scheduler=scheduler, progress=progress)
    for i, r in zip(at, rows):
        results[i] = _sheet_result(r)
    out = pd.DataFrame([{**row, **(res or {})} for row, res in zip(records, results)])
    if dst is not None:
        write_sheet(out, Path(dst))
    return out


def _sheet_result(r: dict[str, Any]) -> dict[str, Any]:
    """A ``batch.plan_job`` row as the sheet's output columns (rounded as a spreadsheet shows them)."""
    if not r["feasible"]:
        return {"status": r["status"] if r["status"] in ("infeasible", "error") else "invalid", "reason": r["reason"]}
    return {"status": r["status"], "cost_per_hour": round(r["cost_per_hour"], 4),
            "cost_per_million_output_tokens": round(r["cost_per_million_output_tokens"], 4),
            "total_gpus": r["total_gpus"], "groups": r["groups"],
            "predicted_ttft_s": round(r["predicted_ttft_s"], 4), "predicted_tpot_s": round(r["predicted_tpot_s"], 5),
            "reason": ""}


def _formula_like(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(_FORMULA_START)


def write_sheet(df: pd.DataFrame, dst: Path) -> None:
    """Write ``df`` as CSV or XLSX (by suffix), atomically. Text that a spreadsheet would run as a formula
    (starting with = + - @) is stored as text: a string cell in XLSX, a leading apostrophe in CSV."""
    if dst.suffix.lower() == ".csv":
        safe = df.map(lambda v: f"'{v}" if _formula_like(v) and not _is_number(v) else v)
        write_atomic(dst, safe.to_csv(index=False).encode())
        return
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        df.to_excel(xw, sheet_name="plans", index=False)
        for row in xw.sheets["plans"].iter_rows():
            for cell in row:
                if _formula_like(cell.value):
                    cell.data_type = "s"
    write_atomic(dst, buf.getvalue())


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True
