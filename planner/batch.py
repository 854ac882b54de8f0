"""Many plans at once: serially, on a local process pool, or on a Dask cluster, with one result.

A *job* is plain data (what a worker process or a remote Dask worker can receive):

    {"doc": {...scenario fields...}, "where": "sweep.yaml point 3", "base": "/abs/folder",
     "hardware_paths": ["/abs/my_gpus.yaml"]}

``plan_job(job)`` parses the scenario (relative files taken from ``base``), plans it without
alternatives on the shipped hardware plus ``hardware_paths`` and returns a plain row:

    status, feasible, cost_per_hour, cost_per_million_output_tokens, total_gpus, groups,
    predicted_ttft_s, predicted_tpot_s, reason

``status`` is the solver's (``optimal`` or ``feasible``: a plan), or ``infeasible`` (no plan meets the
constraints), ``time limit`` (the solver stopped before finding one), ``invalid`` (bad input met at
plan time: an unknown accelerator name, say) or ``error`` (an internal error, kept to its row).

``run_jobs`` returns the rows in job order whatever order workers finish in, and every row is
the one ``plan_job`` returns in this process (same floats), because a plan is a pure function of
its job: no state crosses jobs except caches of the read-only databases.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from planner.errors import InfeasibleError, InputError, PlannerError, SolverLimitError

RESULT_COLUMNS = ("status", "feasible", "cost_per_hour", "cost_per_million_output_tokens", "total_gpus", "groups",
                  "predicted_ttft_s", "predicted_tpot_s", "reason")
MAX_WORKERS = 256
CONNECT_TIMEOUT_S = 10.0
_HW_CACHE: dict[tuple[str, ...], Any] = {}


def make_job(doc: dict, where: str, base: str | Path, hardware_paths: Sequence[str | Path] = ()) -> dict[str, Any]:
    """A job as plain data (absolute paths, so a worker in another folder reads the same files)."""
    return {"doc": doc, "where": where, "base": str(Path(base).resolve()),
            "hardware_paths": [str(Path(p).resolve()) for p in hardware_paths]}


def _hardware(paths: tuple[str, ...]) -> Any:
    """The hardware database for ``paths``, loaded once per process."""
    from planner.hardware import default_hardware, load_hardware

    if paths not in _HW_CACHE:
        _HW_CACHE[paths] = load_hardware(list(paths)) if paths else default_hardware()
    return _HW_CACHE[paths]


def groups_summary(plan: Any) -> str:
    """``2x H100-SXM TP1 colocated; 1x A100-SXM-80GB TP2 PP2 decode``: the plan's groups on one line."""
    return "; ".join(f"{g.instances}x {g.accelerator} TP{g.tp}" + (f" PP{g.pp}" if g.pp > 1 else "") + f" {g.role}"
                     for g in plan.groups)


def failed_row(status: str, reason: str) -> dict[str, Any]:
    """The row of a job that produced no plan."""
    return {"status": status, "feasible": False, "cost_per_hour": None, "cost_per_million_output_tokens": None,
            "total_gpus": None, "groups": "", "predicted_ttft_s": None, "predicted_tpot_s": None, "reason": reason}


def plan_job(job: dict[str, Any], hw: Any = None) -> dict[str, Any]:
    """Plan one job (see the module docstring) on ``hw`` (default: the job's hardware paths); never
    raises for a bad or impossible scenario."""
    from planner.planning import plan
    from planner.scenario import parse_scenario

    try:
        sc = parse_scenario(job["doc"], job.get("where", "scenario"), Path(job.get("base") or "."))
        p = plan(sc, hw=hw or _hardware(tuple(job.get("hardware_paths") or ())), alternatives=False)
    except InfeasibleError as exc:
        return failed_row("infeasible", str(exc))
    except SolverLimitError as exc:
        return failed_row("time limit", str(exc))
    except PlannerError as exc:
        return failed_row("invalid", str(exc))
    except Exception as exc:  # noqa: BLE001 - one point's bug must not lose the other points
        return failed_row("error", f"internal error ({exc.__class__.__name__}: {' '.join(str(exc).split())})")
    return {"status": p.status, "feasible": True, "cost_per_hour": p.cost_per_hour,
            "cost_per_million_output_tokens": p.cost_per_million_output_tokens, "total_gpus": p.total_gpus,
            "groups": groups_summary(p), "predicted_ttft_s": p.predicted["ttft_s"],
            "predicted_tpot_s": p.predicted["tpot_s"], "reason": ""}


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


_SCHEDULER = re.compile(r"((tcp|tls|ucx|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}/?")


def check_workers(workers: int | None, scheduler: str | None) -> None:
    """Refuse a worker count out of range, one given with a Dask scheduler (the cluster has its own), or a
    scheduler address that is not one (``tcp://host:port``, ``tls://...``, or ``host:port``)."""
    if scheduler is not None and not _SCHEDULER.fullmatch(str(scheduler).strip()):
        raise InputError("--scheduler", "a Dask scheduler address such as tcp://host:8786 (or host:8786)", scheduler)
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InputError("--workers", f"a whole number of worker processes in 1..{MAX_WORKERS}", workers)
    if scheduler is not None:
        raise InputError("--workers", "no worker count with --scheduler (the Dask cluster's workers run the plans)",
                         workers)


def run_jobs(jobs: Sequence[dict[str, Any]], workers: int | None = None, scheduler: str | None = None,
             progress: Callable[[], Any] | None = None,
             connect_timeout_s: float = CONNECT_TIMEOUT_S) -> list[dict[str, Any]]:
    """``plan_job`` over ``jobs``, rows in job order. ``scheduler``: a Dask scheduler address (needs the
    ``dask`` extra); else ``workers`` local processes (None: one per CPU core; 1, or a single job: in
    this process). ``progress`` is called once per finished job."""
    check_workers(workers, scheduler)
    if scheduler is not None:
        return _run_dask(list(jobs), scheduler, progress, connect_timeout_s)
    n = min(workers or cpu_count(), len(jobs))
    if n <= 1:
        return [_tick(plan_job(j), progress) for j in jobs]
    return _run_pool(list(jobs), n, progress)


def _tick(row: dict[str, Any], progress: Callable[[], Any] | None) -> dict[str, Any]:
    if progress is not None:
        progress()
    return row


def _run_pool(jobs: list[dict[str, Any]], n: int, progress: Callable[[], Any] | None) -> list[dict[str, Any]]:
    """A local process pool; workers start by spawning (no fork of a process that holds solver threads)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    pool = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"))
    try:
        futures = {pool.submit(plan_job, j): i for i, j in enumerate(jobs)}
        for f in as_completed(futures):
            rows[futures[f]] = _tick(f.result(), progress)
    except BaseException:  # Ctrl-C or a failure: drop the queued points and stop the running ones now
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        raise
    pool.shutdown()
    return [r for r in rows if r is not None]


def _run_dask(jobs: list[dict[str, Any]], scheduler: str, progress: Callable[[], Any] | None,
              connect_timeout_s: float) -> list[dict[str, Any]]:
    """The jobs on a Dask cluster; the rows come back in job order."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise PlannerError("--scheduler: Dask is not installed; pip install 'llm-capacity-planner[dask]' "
                           "(or leave out --scheduler to use local processes)") from None
    try:
        client = Client(scheduler, timeout=connect_timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise PlannerError(f"--scheduler: cannot reach a Dask scheduler at {scheduler!r} "
                           f"({exc.__class__.__name__}: {' '.join(str(exc).split())[:200]})") from None
    with client:
        futures = client.map(plan_job, jobs, pure=False)
        for _ in as_completed(futures, loop=client.loop):
            if progress is not None:
                progress()
        return list(client.gather(futures))
