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

The output keeps the input columns and adds status, cost, GPUs, the chosen groups, predicted
latency, or the reason a row is infeasible or invalid (one bad row never stops the sheet).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import PlannerError
from planner.files import write_atomic

REQUIRED = ("model", "rate_rps", "input", "output")


def _read(path: Path) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise PlannerError(f"sheet {p}: file not found")
    try:
        if p.suffix.lower() in (".xlsx", ".xlsm"):
            df = pd.read_excel(p, sheet_name=0)
        else:
            df = pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line
        raise PlannerError(f"sheet {p}: cannot read ({exc.__class__.__name__}: {exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise PlannerError(f"sheet {p}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise PlannerError(f"sheet {p}: no rows")
    return df


def _cell(row: dict, key: str) -> Any:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
        return None
    return v


def row_to_scenario(row: dict) -> dict[str, Any]:
    """A flat sheet row as a scenario document (``planner.scenario.parse_scenario`` validates it)."""
    doc: dict[str, Any] = {
        "model": str(_cell(row, "model") or ""),
        "workload": {"rate_rps": _cell(row, "rate_rps"), "input": str(_cell(row, "input")),
                     "output": str(_cell(row, "output"))},
        "slo": {k: _cell(row, k) for k in ("ttft_s", "tpot_s", "percentile") if _cell(row, k) is not None},
    }
    for key in ("precision", "kv_dtype", "engine", "name"):
        if _cell(row, key) is not None:
            doc[key] = str(_cell(row, key))
    if _cell(row, "accelerators") is not None:
        doc["accelerators"] = [a.strip() for a in str(row["accelerators"]).split(",") if a.strip()]
    if _cell(row, "budget_per_hour") is not None:
        doc["budget_per_hour"] = _cell(row, "budget_per_hour")
    for key in ("rate_rps",):
        v = doc["workload"][key]
        if isinstance(v, str):
            try:
                doc["workload"][key] = float(v)
            except ValueError:
                pass
    return doc


def plan_sheet(src: str | Path, dst: str | Path | None = None, progress=None) -> pd.DataFrame:
    """Plan every row of ``src``; write the result sheet to ``dst`` (XLSX or CSV) when given."""
    from planner.planning import plan
    from planner.scenario import parse_scenario

    df = _read(Path(src))
    out_rows = []
    for i, row in enumerate(df.to_dict("records")):
        res: dict[str, Any] = dict(row)
        try:
            p = plan(parse_scenario(row_to_scenario(row), f"row {i + 2}"), alternatives=False)
            res.update(status=p.status, cost_per_hour=round(p.cost_per_hour, 4),
                       cost_per_million_output_tokens=round(p.cost_per_million_output_tokens, 4),
                       total_gpus=p.total_gpus,
                       groups="; ".join(f"{g.instances}x {g.accelerator} TP{g.tp}" + (f" PP{g.pp}" if g.pp > 1 else "")
                                        + f" {g.role}" for g in p.groups),
                       predicted_ttft_s=round(p.predicted["ttft_s"], 4),
                       predicted_tpot_s=round(p.predicted["tpot_s"], 5), reason="")
        except PlannerError as exc:
            res.update(status="infeasible" if exc.__class__.__name__ == "InfeasibleError" else "invalid",
                       reason=str(exc))
        out_rows.append(res)
        if progress is not None:
            progress()
    out = pd.DataFrame(out_rows)
    if dst is not None:
        d = Path(dst)
        if d.suffix.lower() == ".csv":
            write_atomic(d, out.to_csv(index=False).encode())
        else:
            buf = io.BytesIO()
            with pd.ExcelWriter(buf, engine="openpyxl") as xw:
                out.to_excel(xw, sheet_name="plans", index=False)
            write_atomic(d, buf.getvalue())
    return out
