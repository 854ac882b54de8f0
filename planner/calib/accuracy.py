"""The honest accuracy figures: end-to-end rows split once (seeded) into a training half, which
``scripts/fit_profiles.py`` fits on, and a hold-out half, which docs/accuracy.md and the
regression test score."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from planner.calib.kernels import with_split
from planner.calib.measured import from_aiconfigurator_silicon, from_mlperf
from planner.errors import PlannerError
from planner.hardware import default_hardware
from planner.validate import Validation, validate_frame


def serving_rows(calibration: Path, seed: int = 0) -> pd.DataFrame:
    """Silicon (aggregated), MLPerf Offline and MLPerf Server rows on known accelerators, with a
    ``train`` column. The Server rows come last, so adding them left the split of the others as it was."""
    frames = [from_aiconfigurator_silicon(Path(calibration) / "aiconfigurator_silicon_sample.csv"),
              from_mlperf(Path(calibration) / "mlperf_llm_all.csv"),
              from_mlperf(Path(calibration) / "mlperf_llm_all.csv", scenarios=("Server",))]
    df = pd.concat(frames, ignore_index=True)
    hw = default_hardware()
    known = []
    for a in df["accelerator"]:
        try:
            hw.get(str(a))
            known.append(True)
        except PlannerError:
            known.append(False)
    return with_split(df[known].reset_index(drop=True), seed)


def holdout_validation(calibration: Path, seed: int = 0) -> Validation:
    """Validation of the shipped profiles on the hold-out half."""
    df = serving_rows(calibration, seed)
    return validate_frame(df[~df["train"]].drop(columns=["train"]))
