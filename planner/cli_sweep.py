"""``planner sweep``: a base scenario and axes of values, every point planned, one tidy table out;
the ``--workers``/``--scheduler`` options and progress bar ``planner sheet`` shares. Parse, call, render."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from planner.cli import _JSON, _STATE, _hw, app, err, fail, guarded, out, print_json, refuse_inputs

WORKERS = typer.Option(None, "--workers", "-w", help="Local worker processes (default: one per CPU core; "
                       "1: in this process).")
SCHEDULER = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786): run the plans on "
                         "that cluster (needs the dask extra).")


@contextlib.contextmanager
def progress_bar(what: str, quiet: bool) -> Iterator[tuple[Callable[[], Any], Callable[[int], Any]]]:
    """(advance, set_total) for a rich progress bar on stderr; both do nothing when ``quiet`` or when
    stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield (lambda: None), (lambda n: None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*cols, transient=True, console=err) as prog:
        task = prog.add_task(what, total=None)
        yield (lambda: prog.advance(task)), (lambda n: prog.update(task, total=n))


@app.command("sweep")
@guarded
def sweep_cmd(src: Path = typer.Argument(..., help="Sweep file (YAML/TOML): base scenario and axes."),
              output: Path | None = typer.Option(None, "--output", "-o",
                                                 help="Write the table here (.csv, .parquet or .xlsx)."),
              workers: int | None = WORKERS, scheduler: str | None = SCHEDULER, as_json: bool = _JSON,
              quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Plan every point of a sweep (the cartesian product of its axes) and print or write one table."""
    from planner.batch import check_workers
    from planner.report.sweep_out import summary, sweep_table
    from planner.sweep import check_table_output, load_sweep, run_sweep, write_table

    check_workers(workers, scheduler)
    check_table_output(output)
    sw = load_sweep(src)
    refuse_inputs(output, "--output", src, sw.base_file or None)
    _hw()  # a bad --hardware-path fails here, once, not in every point
    with progress_bar("planning points", quiet or as_json) as (advance, set_total):
        rows = run_sweep(sw, workers=workers, scheduler=scheduler, hardware_paths=_STATE["hardware_paths"],
                         progress=advance, on_total=set_total)
    if output is not None:
        write_table(rows, output)
    if as_json:
        print_json(rows)
    else:
        sweep_table(rows, sw.paths, f"{len(rows)} points" + (f" -> {output}" if output else ""), out)
        if any(r["feasible"] for r in rows):
            err.print(summary(rows), highlight=False)
    _exit_code(rows)


def _exit_code(rows: list[dict[str, Any]]) -> None:
    """Exit 0 when some point has a plan; 1 when none does and some are infeasible; 2 when every point
    is bad input (the first point's reason names it). The table is written and printed first."""
    if any(r["feasible"] for r in rows):
        return
    if all(r["status"] == "invalid" for r in rows):
        fail(f"every point is invalid; point 0: {rows[0]['reason']}")
    fail("no point of the sweep has a plan that meets its constraints", 1)
