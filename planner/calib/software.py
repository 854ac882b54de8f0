"""Software speed of each MLPerf round's submissions, relative to the shipped profiles.

MLPerf rounds six months apart run the same hardware with new engine builds, and the results move a
lot: Llama-2-70B Offline on 8 H100-SXM went from 21,806 tokens/s (v4.0) to 31,306 (v5.0) on the
same GPUs. The shipped profiles describe one software level, the aiconfigurator kernel tables and
silicon runs they are fitted on, so a round's rows carry a speed ``s``: its submissions run every
step ``s`` times as fast as the profile predicts.

The model is time-rescaled exactly (``planner.validate.predict_row`` with a ``software_speed``
column): every time in the model divided by s is the same model at rates λ/s, with limits s·L. So
throughput and rates come out times s and latencies over s, and concurrency, memory and caps stay.

Fit (``fit_round_speeds``): one factor per (engine, round) on the training half of the MLPerf
Offline rows, predicted with the final profiles, by the MAP fit of ``planner.calib.fit`` on the
residuals ln(s·predicted/measured)/``ROW_SD`` (soft-L1 beyond 2 ``ROW_SD``). The prior
is a log-normal at 1 ("within 1.5x"), bounded to [0.5, 2]: no round of software has halved or
doubled a system's throughput. MLPerf Server rows are scored with their round's speed and never
fitted. The fitted table is ``planner/data/mlperf_software.csv``, written by
``scripts/fit_profiles.py``. ``serving_rows(..., software=True)`` attaches it for scoring; the fit
of the profiles reads the rows without it, so re-running gives the same bytes. The planner plans at
speed 1: the profile's software, not a tuned submission's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from planner.calib.fit import MapFit, Prior, map_fit
from planner.errors import PlannerError

TABLE = Path(__file__).resolve().parents[1] / "data" / "mlperf_software.csv"
SPEED_PRIOR = Prior(math.log(1.5), 0.5, 2.0, log=True,
                    why="a round's software speed relative to the profile: no round halved or doubled throughput")
COLUMNS = ("engine", "round", "speed", "se", "status", "rows")
ROW_SD = 0.1
"""Scatter of one MLPerf row about its round's speed, ln units: the likelihood's scale (rows of one round
and system agree within a few percent; across systems the Offline hold-out MdAPE is ~8-10%). The MAP fit
weighs the residuals r/ROW_SD against the prior, so a round of 18 rows is decided by its rows."""
MIN_ROWS = 3
"""Fewest training rows a round needs for a speed of its own (below: speed 1, the profile's)."""


def fit_round_speeds(rows: pd.DataFrame, predicted: np.ndarray) -> dict[tuple[str, str], MapFit]:
    """One MAP fit per (engine, round) of ``rows`` (MLPerf Offline training rows with ``engine``,
    ``version``, ``output_tokens_per_s``) given the profile's ``predicted`` throughput of each row
    (NaN where it cannot be evaluated); rounds with fewer than ``MIN_ROWS`` evaluable rows get none."""
    meas = rows["output_tokens_per_s"].to_numpy(dtype=float)
    pred = np.asarray(predicted, dtype=float)
    ok = np.isfinite(pred) & (pred > 0) & np.isfinite(meas) & (meas > 0)
    base = np.log(np.where(ok, pred, 1.0) / np.where(ok, meas, 1.0))
    out: dict[tuple[str, str], MapFit] = {}
    keys = sorted({(str(e), str(v)) for e, v in zip(rows["engine"], rows["version"])})
    for engine, rnd in keys:
        sel = ok & (rows["engine"].astype(str) == engine).to_numpy() & (rows["version"].astype(str) == rnd).to_numpy()
        if sel.sum() < MIN_ROWS:  # too few to tell the round from the rows' own scatter: speed 1
            continue
        r0 = base[sel]
        out[(engine, rnd)] = map_fit(lambda v, r0=r0: (r0 + math.log(v["software_speed"])) / ROW_SD,
                                     {"software_speed": 1.0}, {"software_speed": SPEED_PRIOR}, f_scale=2.0, step=1e-3)
    return out


def speed_table(fits: dict[tuple[str, str], MapFit]) -> pd.DataFrame:
    """The fits as the shipped table: engine, round, speed, standard error, status, rows (4 digits)."""
    recs = []
    for (engine, rnd), fit in sorted(fits.items()):
        f = fit.factors[0]
        recs.append({"engine": engine, "round": rnd, "speed": float(f"{f.value:.4g}"),
                     "se": float(f"{f.se:.4g}") if f.se is not None and math.isfinite(f.se) else math.nan,
                     "status": f.status, "rows": fit.n_rows})
    return pd.DataFrame(recs, columns=list(COLUMNS))


def load_speeds(path: Path | None = None) -> dict[tuple[str, str], float]:
    """(engine, round) -> speed from the shipped table (empty when there is none)."""
    p = Path(path) if path is not None else TABLE
    if not p.exists():
        return {}
    df = pd.read_csv(p)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise PlannerError(f"{p}: missing column(s) {', '.join(missing)}")
    return {(str(e), str(r)): float(s) for e, r, s in zip(df["engine"], df["round"], df["speed"])}


def with_software_speed(df: pd.DataFrame, speeds: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """``df`` with a ``software_speed`` column: the round's speed for MLPerf rows (those with a
    ``version``) whose (engine, round) is in the table, else blank (speed 1)."""
    speeds = load_speeds() if speeds is None else speeds
    out = df.copy()
    if "version" not in out.columns:
        out["software_speed"] = np.nan
        return out
    out["software_speed"] = [speeds.get((str(e), str(v)), math.nan) if isinstance(v, str) else math.nan
                             for e, v in zip(out["engine"], out["version"])]
    return out
