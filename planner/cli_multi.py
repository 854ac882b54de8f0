"""``planner plan`` for a scenario with ``models:``: parse the flags that apply, plan the fleet, render.

``--budget``, ``--objective`` and ``--gpus`` replace the shared values; ``--json``, ``--csv`` and
``--quiet`` work as for one model. The per-model flags (``--model``, ``--rate``, ``--ttft`` ...) and
the one-plan outputs (``--xlsx``, ``--plot``, ``--emit``, ``--verify``, ``--confidence``) are refused
with a one-line error: set per-model values in the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from planner.cli import _hw, check_output, err, fail, out, print_json, refuse_inputs
from planner.errors import InputError
from planner.multi_scenario import MultiScenario


def plan_fleet(ms: MultiScenario, scenario: Path | None, *, as_json: bool, quiet: bool, csv: Path | None,
               budget: float | None, objective: str | None, gpus: str | None, refused: dict[str, Any]) -> None:
    """Plan and print a fleet scenario; ``refused``: flag → value of the flags a fleet does not take."""
    given = [flag for flag, val in refused.items() if val not in (None, False)]
    if given:
        fail(f"{given[0]}: not available for a scenario with models:; set per-model values in the file "
             f"(fleet flags: --budget, --objective, --gpus, --json, --csv, --quiet)")
    check_output(csv, "--csv", (".csv",))
    refuse_inputs(csv, "--csv", scenario)
    ms = _overrides(ms, budget, objective, gpus)
    from planner.multi_planning import plan_multi, prepare_all

    if quiet or as_json or not sys.stderr.isatty():
        preps = prepare_all(ms, hw=_hw())
    else:
        with err.status(f"evaluating candidates for {len(ms.models)} models"):
            preps = prepare_all(ms, hw=_hw())
    result = plan_multi(ms, hw=_hw(), prepared=preps)
    if csv is not None:
        from planner.report.multi_out import write_csv

        write_csv(result, csv)
    if as_json:
        from planner.uncertainty import with_bands

        data = result.to_dict()
        data["models"] = [with_bands(s, 0.9, _hw()) for s in data["models"]]
        print_json(data)
        return
    from planner.report.multi_out import render

    render(result, out)


def _overrides(ms: MultiScenario, budget: float | None, objective: str | None, gpus: str | None) -> MultiScenario:
    kw: dict[str, Any] = {}
    if budget is not None:
        kw["budget_per_hour"] = budget
    if objective is not None:
        kw["objective"] = objective
    if gpus is not None:
        names = tuple(g.strip() for g in gpus.split(",") if g.strip())
        if not names:
            raise InputError("--gpus", "a comma-separated list of accelerator names", gpus)
        kw["accelerators"] = names
    return ms.with_shared(**kw) if kw else ms
