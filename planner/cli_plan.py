"""The planning commands of ``planner``: plan, capacity, sheet, validate, calibrate. Parse, call, render."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from planner.cli import _JSON, _TPOT, _TTFT, _hw, app, check_output, err, fail, guarded, out, print_json, refuse_inputs
from planner.cli_sweep import SCHEDULER, WORKERS, progress_bar
from planner.report import tables

_SCENARIO = typer.Argument(None, help="Scenario YAML/TOML (flags below override it).")
_VERIFY_REQUESTS = typer.Option(2000, "--verify-requests", min=10, max=200_000,
                                help="Requests replayed by --verify (more: tighter attainment, slower).")
_MAX_REPLAYS = typer.Option(24, "--max-replays", min=0, max=1000,
                            help="Cap on replays in the search for the smallest instance counts (0: no search).")


def _scenario(scenario: Path | None, **flags):
    from planner.scenario import load_scenario, with_overrides

    return with_overrides(load_scenario(scenario) if scenario is not None else None, **flags)


def _prepare(sc, quiet: bool, as_json: bool):
    """Buckets and capacity table, with a progress bar (count and ETA) on a terminal."""
    from planner.planning import prepare

    if quiet or as_json or not sys.stderr.isatty():
        return prepare(sc, hw=_hw())
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from planner.planning import ROLE_SETS, accelerators_of

    total = len(accelerators_of(sc, _hw())) * len(ROLE_SETS[sc.disaggregation]) * 8
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*cols, transient=True, console=err) as prog:
        task = prog.add_task("evaluating candidates", total=total)
        prep = prepare(sc, hw=_hw(), progress=lambda: prog.advance(task))
    return prep


@app.command("plan")
@guarded
def plan_cmd(scenario: Path | None = _SCENARIO,
             model: str | None = typer.Option(None, "--model", "-m", help="Model (without a scenario file)."),
             precision: str | None = typer.Option(None, "--precision", "-p"),
             kv_dtype: str | None = typer.Option(None, "--kv-dtype"),
             engine: str | None = typer.Option(None, "--engine", "-e"),
             rate: float | None = typer.Option(None, "--rate", help="Request rate, requests/s."),
             isl: str | None = typer.Option(None, "--isl", help="Input length: 1024 or lognormal:mean=..,p99=.."),
             osl: str | None = typer.Option(None, "--osl", help="Output length, same forms."),
             ttft: float | None = _TTFT, tpot: float | None = _TPOT,
             percentile: str | None = typer.Option(None, "--percentile"),
             gpus: str | None = typer.Option(None, "--gpus", help="Comma-separated candidate accelerators."),
             budget: float | None = typer.Option(None, "--budget", help="Max $/hour."),
             objective: str | None = typer.Option(None, "--objective", help="cost, gpus, power or energy."),
             disaggregation: str | None = typer.Option(None, "--disaggregation", help="auto, off or only."),
             as_json: bool = _JSON, csv: Path | None = typer.Option(None, "--csv", help="Write groups as CSV."),
             xlsx: Path | None = typer.Option(None, "--xlsx", help="Write an XLSX workbook."),
             plot: Path | None = typer.Option(None, "--plot", help="Cost against request rate (.png/.svg)."),
             plot_slo: Path | None = typer.Option(None, "--plot-slo", help="Cost against the TTFT limit (.png/.svg)."),
             confidence: float | None = typer.Option(None, "--confidence", help="Size for the SLO at the upper "
                                                     "end of the error band at this level (0.5, 0.8 or 0.9)."),
             emit: Path | None = typer.Option(None, "--emit", help="Write launch commands, manifests and a README "
                                              "into this new folder."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
             verify: bool = typer.Option(False, "--verify", help="Replay the whole plan in the discrete-event "
                                         "simulator: SLO attainment per bucket, over-provisioning."),
             verify_requests: int = _VERIFY_REQUESTS, verify_seed: int = typer.Option(0, "--verify-seed", min=0),
             max_replays: int = _MAX_REPLAYS) -> None:
    """The cheapest deployment that meets the SLO at the rate: GPUs, parallelism, P/D split, cost."""
    from planner.multi_scenario import MultiScenario, load_any
    from planner.planning import cost_vs_rate, cost_vs_slo, plan
    from planner.report.plan_out import render, write_csv, write_xlsx
    from planner.scenario import with_overrides

    loaded = load_any(scenario) if scenario is not None else None
    if isinstance(loaded, MultiScenario):  # several models in one fleet (planner/cli_multi.py)
        from planner.cli_multi import plan_fleet

        return plan_fleet(loaded, scenario, as_json=as_json, quiet=quiet, csv=csv, budget=budget, objective=objective,
                          gpus=gpus, refused={"--model": model, "--precision": precision, "--kv-dtype": kv_dtype,
                                              "--engine": engine, "--rate": rate, "--isl": isl, "--osl": osl,
                                              "--ttft": ttft, "--tpot": tpot, "--percentile": percentile,
                                              "--disaggregation": disaggregation, "--xlsx": xlsx, "--plot": plot,
                                              "--plot-slo": plot_slo, "--confidence": confidence, "--emit": emit,
                                              "--verify": verify})
    sc = with_overrides(loaded, model=model, precision=precision, kv_dtype=kv_dtype, engine=engine, rate_rps=rate,
                        isl=isl, osl=osl, ttft_s=ttft, tpot_s=tpot, percentile=percentile, accelerators=gpus,
                        budget_per_hour=budget, objective=objective, disaggregation=disaggregation)
    if sc.rate_profile is not None:  # a day: the schedule over the profile's periods (planner/day.py)
        return _plan_day(sc, quiet, as_json, csv=csv, xlsx=xlsx, plot=plot, plot_slo=plot_slo, confidence=confidence,
                         emit=emit, verify=verify)
    check_output(csv, "--csv", (".csv",))
    check_output(xlsx, "--xlsx", (".xlsx",))
    for path_, flag_ in ((csv, "--csv"), (xlsx, "--xlsx"), (plot, "--plot"), (plot_slo, "--plot-slo")):
        refuse_inputs(path_, flag_, scenario)
    from planner.report import plots

    for p, flag_ in ((plot, "--plot"), (plot_slo, "--plot-slo")):  # fail on a bad plot path before minutes of work
        if p is not None:
            plots._check_path(p, flag_)
    if emit is not None:
        from planner.cli_fleet import check_emit_dir

        check_emit_dir(emit, scenario)
    from planner.uncertainty import LEVELS, confident_scenario, with_bands

    if confidence is not None and confidence not in LEVELS:
        fail(f"--confidence: expected one of {', '.join(f'{x:g}' for x in LEVELS)} (got {confidence:g})")
    point_cost = factors = None
    if confidence is not None:
        from planner.planning import accelerators_of

        point_cost = plan(sc, hw=_hw()).cost_per_hour
        sc, factors = confident_scenario(sc, confidence, [a.id for a in accelerators_of(sc, _hw())], _hw())
    prep = _prepare(sc, quiet, as_json)
    result = plan(sc, hw=_hw(), prepared=prep)
    data = with_bands(result.to_dict(), confidence or 0.9, _hw())
    if factors is not None:
        data["confidence"] = {"level": confidence, "cost_per_hour_point": point_cost,
                              "cost_per_hour": result.cost_per_hour, "slo_divided_by": factors}
    if emit is not None:
        from planner.cli_fleet import emit_plan

        emit_plan(data, emit, (scenario,) if scenario else ())
    if plot is not None:
        plots.cost_vs_rate_plot(cost_vs_rate(prep), plot, f"{result.model}: cost to meet the SLO against request "
                                "rate", marker_rate=sc.workload.rate_rps)
    if plot_slo is not None:
        field_, pts = cost_vs_slo(sc, _hw())
        name = f"p{sc.slo.percentile:g} {field_[:4].upper()} limit"
        plots.cost_vs_slo_plot(pts, plot_slo, f"{result.model} at {sc.workload.rate_rps:g} req/s: cost against the "
                               f"{name}", f"{name} (s)")
    if csv is not None:
        write_csv(result, csv)
    if xlsx is not None:
        write_xlsx(result, xlsx)
    check = None
    if verify:
        check = run_verify(result, sc, verify_requests, verify_seed, max_replays, quiet or as_json)
    if as_json:
        print_json(data | ({"verification": check.to_dict()} if check is not None else {}))
        return
    render(result, out)
    if factors is not None:
        out.print(f"confidence {confidence:g}: ${result.cost_per_hour:,.2f}/h sized for the SLO at the band's "
                  f"upper end (TTFT x{factors['ttft_s']:.2f}, TPOT x{factors['tpot_s']:.2f}); "
                  f"${point_cost:,.2f}/h at the point estimate", highlight=False)
    if check is not None:
        from planner.report.verify_out import render as render_verify

        render_verify(check, out)


def _plan_day(sc, quiet: bool, as_json: bool, **unsupported) -> None:
    """``plan`` of a scenario with ``workload.rate_profile``: the day's schedule, cost, energy, saving."""
    from planner.day import plan_day
    from planner.report.day_out import render_day

    for name, value in unsupported.items():
        if value not in (None, False):
            fail(f"--{name.replace('_', '-')}: not available with workload.rate_profile (a day plan); "
                 f"remove the profile to plan one rate")
    day = plan_day(sc, hw=_hw(), prepared=_prepare(sc, quiet, as_json))
    if as_json:
        print_json(day.to_dict())
        return
    render_day(day, out)


def run_verify(plan, scenario, n_requests: int, seed: int, max_replays: int, quiet: bool):
    """``verify_plan`` with a status line on a terminal."""
    from planner.verify import verify_plan

    if quiet or not sys.stderr.isatty():
        return verify_plan(plan, scenario, n_requests=n_requests, seed=seed, search_smallest=max_replays > 0,
                           max_replays=max_replays, hw=_hw())
    with err.status("replaying the plan in simulation") as status:
        return verify_plan(plan, scenario, n_requests=n_requests, seed=seed, search_smallest=max_replays > 0,
                           max_replays=max_replays, hw=_hw(), progress=status.update)


def simulate_plan(plan_path: Path, scenario: Path | None, n_requests: int, seed: int, max_replays: int,
                  as_json: bool, quiet: bool) -> None:
    """``planner simulate --plan PLAN.json [--scenario FILE]``: replay a saved plan and render the result."""
    from planner.verify import load_plan

    plan = load_plan(plan_path)
    check = run_verify(plan, scenario, n_requests, seed, max_replays, quiet or as_json)
    if as_json:
        print_json(check.to_dict())
        return
    from planner.report.verify_out import render as render_verify

    render_verify(check, out)


@app.command("capacity")
@guarded
def capacity_cmd(scenario: Path = typer.Argument(..., help="Scenario YAML/TOML."),
                 as_json: bool = _JSON,
                 csv: bool = typer.Option(False, "--csv", help="Print the table as CSV on standard output."),
                 all_rows: bool = typer.Option(False, "--all", help="Also rows that meet the SLO at no rate."),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Capacity per instance and bucket under the SLO: the table the optimiser chooses from."""
    sc = _scenario(scenario)
    prep = _prepare(sc, quiet, as_json or csv)
    table = prep.table
    if as_json:
        print_json(table.to_dict())
        return
    df = table.to_frame()
    if not all_rows:
        df = df[df["capacity_rps"] > 0]
    if csv:
        sys.stdout.write(df.to_csv(index=False))
        return
    tables.capacity(df, table.percentile, out)
    for r in table.rejected:
        out.print(f"[yellow]not a candidate:[/] {r.accelerator}: {r.reason}", highlight=False)


@app.command("sheet")
@guarded
def sheet_cmd(src: Path = typer.Argument(..., help="Sheet of scenarios (XLSX or CSV), one per row."),
              output: Path = typer.Option(..., "--output", "-o", help="Where to write the plans (XLSX or CSV)."),
              as_json: bool = _JSON,
              quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
              workers: int | None = WORKERS, scheduler: str | None = SCHEDULER) -> None:
    """Plan every row of a capacity spreadsheet and write the plans back as a sheet."""
    from planner.batch import check_workers
    from planner.cli import _STATE
    from planner.sheet import plan_sheet

    check_workers(workers, scheduler)
    check_output(output, "--output", (".xlsx", ".csv"))
    refuse_inputs(output, "--output", src)
    _hw()  # a bad --hardware-path fails here, once, not in every row
    with progress_bar("planning rows", quiet or as_json) as (advance, _):
        df = plan_sheet(src, output, progress=advance, workers=workers, scheduler=scheduler,
                        hardware_paths=_STATE["hardware_paths"])
    if as_json:
        print_json(df.to_dict("records"))
        return
    tables.sheet(df, str(output), out)


@app.command("validate")
@guarded
def validate_cmd(measured: Path = typer.Argument(..., help="Measured CSV (our schema, MLPerf or aiconfigurator)."),
                 profile: str | None = typer.Option(None, "--profile", help="Profile YAML (default: per-row engine)."),
                 max_mdape: float | None = typer.Option(None, "--max-mdape", help="Gate: max median APE, e.g. 0.15."),
                 max_p90_ape: float | None = typer.Option(None, "--max-p90-ape", help="Gate: max p90 APE."),
                 junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
                 as_json: bool = _JSON, rows: bool = typer.Option(False, "--rows", help="Print every row."),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Predicted vs measured per row, per group and per accelerator family; exit 1 when a gate fails."""
    from planner.profile import load_profile
    from planner.validate import read_measured_any, validate_frame

    for name, val in (("--max-mdape", max_mdape), ("--max-p90-ape", max_p90_ape)):
        if val is not None and not (0 < val <= 1):
            fail(f"{name}: expected a fraction in (0, 1] such as 0.15 for 15% (got {val})")
    check_output(junit, "--junit", (".xml",))
    refuse_inputs(junit, "--junit", measured, profile)
    df = read_measured_any(measured, software=profile is None)  # round speeds are the shipped profiles'
    prof = load_profile(profile) if profile else None
    if not quiet and not as_json and sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*cols, transient=True, console=err) as prog:
            task = prog.add_task("predicting rows", total=len(df))
            val = validate_frame(df, profile=prof, hw=_hw(), progress=lambda i: prog.update(task, completed=i))
    else:
        val = validate_frame(df, profile=prof, hw=_hw())
    if val.rows.empty:
        first = f" (line {val.skipped[0][0]}: {val.skipped[0][1]})" if val.skipped else ""
        fail(f"{measured}: no row could be evaluated{first}")
    fails = val.gate(max_mdape, max_p90_ape)
    if junit is not None:
        from planner.report.junit import write_junit

        write_junit(junit, val, max_mdape, max_p90_ape)
    if as_json:
        print_json({**val.to_dict(), "failures": fails, "passed": not fails})
    else:
        tables.validation(val, out, err, rows, fails, len(df))
    if fails:
        raise typer.Exit(1)


@app.command("calibrate")
@guarded
def calibrate_cmd(measured: Path = typer.Argument(..., help="Measured CSV (our schema, MLPerf or aiconfigurator)."),
                  output: Path = typer.Option(..., "--output", "-o", help="Profile YAML to write."),
                  engine: str = typer.Option("vllm", "--engine", "-e", help="Engine profile to start from."),
                  holdout: float = typer.Option(0.3, "--holdout", min=0.0, max=0.9,
                                                help="Share of rows kept out of the fit to report error on."),
                  seed: int = typer.Option(0, "--seed", min=0, help="Seed of the hold-out split."),
                  as_json: bool = _JSON,
                  quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress spinner.")) -> None:
    """Fit an engine profile's serving factors to your measurements, per accelerator family."""
    from planner.calibrate import calibrate
    from planner.validate import read_measured_any

    check_output(output, "--output", (".yaml", ".yml"))
    refuse_inputs(output, "--output", measured, engine)
    df = read_measured_any(measured, software=False)  # the user's own software: no shipped round speeds
    if not quiet and not as_json and sys.stderr.isatty():
        with err.status(f"fitting {engine} factors to {len(df)} rows (robust least squares)"):
            report = calibrate(df, engine=engine, output=output, holdout=holdout, seed=seed, hw=_hw())
    else:
        report = calibrate(df, engine=engine, output=output, holdout=holdout, seed=seed, hw=_hw())
    if as_json:
        print_json({"output": str(output), "engine": engine, "families": report})
        return
    tables.calibration(report, f"calibrated {engine} profile -> {output}", out)
