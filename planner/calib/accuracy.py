"""The honest accuracy figures: end-to-end rows split once (seeded) into a training half, which
``scripts/fit_profiles.py`` fits on, and a hold-out half, which docs/accuracy.md and the
regression test score."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pandas as pd

from planner.calib.kernels import with_split
from planner.calib.measured import from_aiconfigurator_silicon, from_mlperf
from planner.calib.plausible import with_plausibility
from planner.calib.published import from_published, published_path
from planner.calib.software import with_software_speed
from planner.errors import PlannerError
from planner.hardware import default_hardware
from planner.validate import Validation, validate_frame


def _known(df: pd.DataFrame) -> pd.DataFrame:
    hw = default_hardware()
    known = []
    for a in df["accelerator"]:
        try:
            hw.get(str(a))
            known.append(True)
        except PlannerError:
            known.append(False)
    return df[known].reset_index(drop=True)


def serving_rows(calibration: Path, seed: int = 0, published: Path | None | bool = True,
                 software: bool = False) -> pd.DataFrame:
    """Silicon (aggregated), MLPerf Offline and MLPerf Server rows (Closed division) on known accelerators, with a
    ``train`` column, then the published AMD/Ascend rows (``planner.calib.published``; ``published``:
    True for the file found next to ``calibration`` or bundled with the tests, a path, or False for none).
    The Server rows come after the others and the published rows are split on their own with the same
    seed and appended last, so adding either left the split of the rows before them as it was.
    ``origin`` says which set a row is from (silicon, mlperf, mlperf-server, published). ``software``: MLPerf
    rows get their round's software speed (``planner.calib.software``; for scoring, never for the fit).
    ``plausible`` is False for closed-loop rows whose TPOT is below their batch's bandwidth floor
    (``planner.calib.plausible``): neither fitted nor scored."""
    frames = [from_aiconfigurator_silicon(Path(calibration) / "aiconfigurator_silicon_sample.csv").assign(
                  origin="silicon"),
              from_mlperf(Path(calibration) / "mlperf_llm_all.csv", divisions=None).assign(origin="mlperf"),
              from_mlperf(Path(calibration) / "mlperf_llm_all.csv", scenarios=("Server",), divisions=None).assign(
                  origin="mlperf-server")]
    df = with_split(_known(pd.concat(frames, ignore_index=True)), seed)
    # the split is drawn over every row read, then MLPerf Open-division rows are left out (another
    # workload: ``from_mlperf``), so the other rows keep the half they were drawn into
    df = df[df["division"].fillna("closed") == "closed"].drop(columns=["division"]).reset_index(drop=True)
    if software:
        df = with_software_speed(df)
    path = published_path(calibration) if published is True else (published or None)
    if path is not None:
        pub = with_split(_known(from_published(path).assign(origin="published")), seed)
        df = pd.concat([df, pub], ignore_index=True)
    return with_plausibility(df)


def holdout_validation(calibration: Path, seed: int = 0, published: Path | None | bool = True,
                       software: bool = True, limits: bool = True) -> Validation:
    """Validation of the shipped profiles on the hold-out half. Its rows carry ``origin`` and the
    accelerator family (``family``) of the measured row they score. ``software``: MLPerf rows at their
    round's software speed; ``limits``: MLPerf Server rows at the model's own highest rate meeting their
    p99 limits (``planner.validate``), else at their submitted rate. Both off: the rows as the planner
    predicts a deployment (speed 1, at a rate), which is what ``scripts/gen_uncertainty.py`` wants.
    Memoised per process (the same arguments give a copy of the same result: the shipped profiles and
    the calibration files do not change while it runs)."""
    v = _holdout(str(Path(calibration).resolve()), seed, published if isinstance(published, bool) or published is None
                 else str(published), software, limits)
    return replace(v, rows=v.rows.copy(), summary=v.summary.copy(), families=v.families.copy())


@lru_cache(maxsize=8)
def _holdout(calibration: str, seed: int, published: str | bool | None, software: bool, limits: bool) -> Validation:
    df = serving_rows(Path(calibration), seed, published if not isinstance(published, str) else Path(published),
                      software=software)
    if not limits:
        df = df.drop(columns=[c for c in ("ttft_limit_s", "tpot_limit_s") if c in df.columns])
    test = df[~df["train"] & df["plausible"]].drop(columns=["train", "plausible", "tpot_floor_s"])
    test = test.reset_index(drop=True)
    v = validate_frame(test)
    if not v.rows.empty:
        idx = v.rows["line"] - 2  # validate_frame numbers rows as file lines (header + 1-based)
        hw = default_hardware()
        v.rows["origin"] = test["origin"].to_numpy()[idx]
        v.rows["family"] = [hw.get(a).family for a in v.rows["accelerator"]]
    return v
