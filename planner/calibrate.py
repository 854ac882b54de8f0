"""``calibrate``: fit a profile's serving factors to a user's measurements and write it as YAML.

The fit changes only the accelerators present in the measurements (as per-accelerator
overrides), so predictions for other accelerators and engines stay as they were.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from planner.calib.serving import fit_serving
from planner.errors import InputError, PlannerError
from planner.files import write_atomic
from planner.hardware import HardwareDB, default_hardware
from planner.profile import Efficiency, Profile, load_profile
from planner.validate import check_numbers, validate_frame


def profile_to_yaml(profile: Profile) -> str:
    def d(e: Efficiency) -> dict[str, float]:
        return {f.name: float(f"{getattr(e, f.name):.6g}") for f in fields(Efficiency)}

    doc = {"engine": profile.engine, "description": profile.description, "defaults": d(profile.defaults),
           "families": {k: d(e) for k, e in profile.families},
           "accelerators": {k: d(e) for k, e in profile.accelerators}}
    return yaml.safe_dump(doc, sort_keys=False)


def _numbers_ok(row: dict) -> bool:
    try:
        check_numbers(row)
    except PlannerError:
        return False
    return True


def calibrate(df: pd.DataFrame, engine: str = "vllm", output: Path | None = None, holdout: float = 0.3,
              seed: int = 0, hw: HardwareDB | None = None, max_rows: int = 200) -> list[dict[str, Any]]:
    """Fit per accelerator family; returns a report per family; writes ``output`` when given.

    A family whose training split is empty is fitted on all its rows, and its report says
    ``holdout_mdape`` None with a ``note`` "no hold-out" rather than scoring the fit on its own rows.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError("seed", "a whole number >= 0 (the hold-out split's seed)", seed)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not (0.0 <= holdout < 1.0):
        raise InputError("holdout", "a share of the rows in [0, 1)", holdout)
    hw = hw or default_hardware()
    base = load_profile(engine)
    engine = base.engine.strip().lower()  # a profile YAML path fits the rows of the engine the profile is for
    df = df.copy()
    df["engine"] = df["engine"].fillna(engine).astype(str).str.strip().str.lower()
    df = df[df["engine"] == engine]
    fams: dict[str, list[str]] = {}
    keep = []
    for a in df["accelerator"]:
        try:
            acc = hw.get(str(a))
            fams.setdefault(acc.family, [])
            if acc.id not in fams[acc.family]:
                fams[acc.family].append(acc.id)
            keep.append(True)
        except PlannerError:
            keep.append(False)
    df = df[keep]
    ok = [_numbers_ok(r) for r in df.to_dict("records")]  # a numeric cell holding text is refused, not blank
    dropped = ok.count(False)
    df = df[ok]
    if df.empty:
        raise PlannerError(f"calibrate: no rows for engine {engine} on a known accelerator"
                           + (f" ({dropped} refused: a numeric cell holds text or a negative number; "
                              "planner validate names them)" if dropped else ""))
    rng = np.random.default_rng(seed)
    df["train"] = rng.random(len(df)) >= holdout
    prof = base
    report = []
    df["family"] = [hw.get(str(a)).family for a in df["accelerator"]]
    for fam, grp in df.groupby("family"):
        train = grp[grp["train"]].head(max_rows)
        test = grp[~grp["train"]]
        note = ""
        if train.empty:
            # too few rows to split: fit on all of them, and say that nothing is held out
            train, test = grp.head(max_rows), grp.iloc[0:0]
            note = f"no hold-out: all {len(grp)} rows of {fam} were needed for the fit"
        eff, err = fit_serving(train, base, str(fam), hw)
        for acc_id in fams[str(fam)]:
            prof = prof.with_override(acc_id, eff)
        hold = None
        if not test.empty:
            v = validate_frame(test, profile=prof, hw=hw)
            hold = float(v.rows["ape"].median()) if not v.rows.empty else None
        elif not note:
            note = "no hold-out: the split left no test rows"
        report.append({"family": str(fam), "accelerators": fams[str(fam)], "train_rows": len(train),
                       "train_mdape": err, "holdout_mdape": hold, "holdout_rows": len(test),
                       "note": note, "refused_rows": dropped})
    if output is not None:
        write_atomic(Path(output), profile_to_yaml(prof).encode())
    return report
