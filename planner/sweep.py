"""Sweeps: one base scenario, axes of values, every combination planned, one tidy table out.

A sweep file (YAML or TOML; the format is in docs/sweep.md):

```yaml
base: chat.yaml                 # a scenario file (relative to this file) or an inline scenario mapping
axes:                           # the cartesian product of these, first axis slowest, last fastest
  workload.rate_rps: [1, 2, 4, 8]
  accelerators: [[H100-SXM], [A100-SXM-80GB], [H100-SXM, A100-SXM-80GB]]
zip:                            # optional: groups of axes that move together (equal lengths);
  - slo.ttft_s: [0.5, 1, 2]     # each group is one more axis of the product, after those above
    slo.tpot_s: [0.03, 0.05, 0.1]
```

An axis is a dotted path into the scenario (``workload.rate_rps``, ``slo.tpot_s``, ``prices.H100-SXM``)
and a non-empty list of values; each value replaces the base's value at that path. Every point is
checked as a whole scenario before anything is planned, so an unknown path (``workload.rate``) or a bad
value fails at once with the scenario's own did-you-mean, naming the point.

Points: N = prod(len(axis)) (a zip group counts once, with its common length); point k has, for each
axis, the value at index (k // stride) mod len, stride the product of the lengths after it; this is
``itertools.product`` order, and the table's rows follow it whatever order the workers finish in.

The table: ``point``, one column per axis path (lists shown comma-separated, mappings as ``k: v``), then
``batch.RESULT_COLUMNS`` (status, feasible, cost_per_hour, ..., reason) at full float precision.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.batch import RESULT_COLUMNS, make_job, run_jobs
from planner.errors import InputError, PlannerError, echo, shorten

SWEEP_KEYS = ("base", "axes", "zip", "description")
MAX_POINTS = 20_000
MAX_AXES = 32
TABLE_SUFFIXES = (".csv", ".parquet", ".xlsx")


@dataclass(frozen=True)
class Axis:
    """One dimension of the product: one path, or a zip group of paths moving together."""

    paths: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    """values[j] holds, for each path, its value at step j."""


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file: the base scenario document, where its relative paths start, the axes."""

    base: dict
    base_dir: str
    axes: tuple[Axis, ...]
    source: str
    description: str = ""
    base_file: str = ""
    """The base scenario's file ("" when inline)."""

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for a in self.axes for p in a.paths)

    @property
    def size(self) -> int:
        return math.prod(len(a.values) for a in self.axes)


def _load(path: Path, what: str) -> Any:
    from planner._yaml import load_toml, load_yaml

    return load_toml(path, what) if path.suffix.lower() == ".toml" else load_yaml(path, what)


def _values(raw: Any, path: str, where: str) -> tuple[Any, ...]:
    if not isinstance(raw, list) or not raw:
        raise InputError(f"axes.{path}", "a non-empty list of values", raw, where=where)
    return tuple(raw)


def _path(key: Any, where: str) -> str:
    parts = str(key).split(".")
    if not isinstance(key, str) or not all(p.strip() for p in parts):
        raise InputError("axes", "dotted scenario paths such as workload.rate_rps", key, where=where)
    return key


def _axes(raw: dict, zips: Any, where: str) -> tuple[Axis, ...]:
    axes = [Axis((_path(k, where),), tuple((v,) for v in _values(vals, str(k), where))) for k, vals in raw.items()]
    if zips is not None and not isinstance(zips, list):
        raise InputError("zip", "a list of groups, each a mapping of paths to equal-length lists", zips, where=where)
    for g, group in enumerate(zips or []):
        if not isinstance(group, dict) or not group:
            raise InputError(f"zip[{g}]", "a mapping of scenario paths to equal-length lists", group, where=where)
        cols = {_path(k, where): _values(v, str(k), where) for k, v in group.items()}
        lengths = {p: len(v) for p, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"zip[{g}]", "lists of one length",
                             ", ".join(f"{p}: {n}" for p, n in lengths.items()), where=where)
        axes.append(Axis(tuple(cols), tuple(zip(*cols.values()))))
    seen: set[str] = set()
    for p in (p for a in axes for p in a.paths):
        if p in seen:
            raise InputError(f"axes.{p}", "each path on one axis only", where=where)
        seen.add(p)
    if not axes:
        raise InputError("axes", "at least one axis: a scenario path and a list of values", where=where)
    if len(seen) > MAX_AXES:
        raise InputError("axes", f"at most {MAX_AXES} paths", len(seen), where=where)
    return tuple(axes)


def parse_sweep(raw: Any, where: str, folder: Path) -> Sweep:
    """Validate a sweep document (``folder``: where a relative ``base`` path starts)."""
    if not isinstance(raw, dict):
        raise PlannerError(f"{where}: expected a mapping with base and axes, got {type(raw).__name__}")
    for key in raw:
        if key not in SWEEP_KEYS:
            hint = difflib.get_close_matches(str(key), SWEEP_KEYS, n=1)
            did = f"did you mean {hint[0]}?" if hint else f"known: {', '.join(SWEEP_KEYS)}"
            raise PlannerError(f"{where}: unknown key {shorten(key)} ({did})")
    base = raw.get("base")
    if isinstance(base, str) and base.strip():
        bpath = Path(base) if Path(base).is_absolute() else folder / base
        doc, base_dir, base_file = _load(bpath, "base scenario"), bpath.parent, str(bpath)
        if not isinstance(doc, dict):
            raise PlannerError(f"base scenario {bpath}: expected a mapping of scenario fields")
    elif isinstance(base, dict):
        doc, base_dir, base_file = base, folder, ""
    else:
        raise InputError("base", "a scenario file path or an inline scenario mapping", base, where=where)
    axes_raw = raw.get("axes") or {}
    if not isinstance(axes_raw, dict):
        raise InputError("axes", "a mapping of scenario paths to lists of values", axes_raw, where=where)
    axes = _axes(axes_raw, raw.get("zip"), where)
    n = math.prod(len(a.values) for a in axes)
    if n > MAX_POINTS:
        raise InputError("axes", f"at most {MAX_POINTS:,} points in all (split the sweep)", f"{n:,} points",
                         where=where)
    desc = raw.get("description")
    return Sweep(doc, str(base_dir.resolve()), axes, where, "" if desc is None else str(desc), base_file)


def load_sweep(path: str | Path) -> Sweep:
    p = Path(path)
    raw = _load(p, "sweep")
    if raw is None:
        raise PlannerError(f"sweep {p}: empty file, expected base and axes")
    return parse_sweep(raw, str(p), p.parent)


def set_path(doc: dict, path: str, value: Any, where: str) -> dict:
    """A copy of ``doc`` with ``value`` at the dotted ``path`` (missing mappings on the way are made)."""
    out = copy.deepcopy(doc)
    node = out
    parts = path.split(".")
    for i, key in enumerate(parts[:-1]):
        nxt = node.get(key)
        if nxt is None:
            nxt = node[key] = {}
        if not isinstance(nxt, dict):
            head = ".".join(parts[: i + 1])
            raise InputError(f"axes.{path}", f"a path through mappings, but {head} is {echo(nxt)} in the base",
                             where=where)
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)
    return out


def points(sw: Sweep) -> list[dict[str, Any]]:
    """Every point's axis values, {path: value}, in product order (first axis slowest)."""
    out = []
    for combo in itertools.product(*(a.values for a in sw.axes)):
        out.append({p: v for a, vals in zip(sw.axes, combo) for p, v in zip(a.paths, vals)})
    return out


def label(values: dict[str, Any]) -> str:
    return ", ".join(f"{p}={cell(v)}" for p, v in values.items())


def cell(value: Any) -> Any:
    """An axis value as a table cell: scalars as they are, lists comma-separated, mappings ``k: v``."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(cell(v)) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {cell(v)}" for k, v in value.items())
    return value


def scenario_docs(sw: Sweep) -> list[tuple[dict[str, Any], dict]]:
    """(axis values, scenario document) per point, every document checked as a scenario: the first bad
    one fails naming the point (an unknown path gets the scenario's did-you-mean)."""
    from planner.scenario import parse_scenario

    out = []
    for k, vals in enumerate(points(sw)):
        where = f"{sw.source} point {k} ({shorten(label(vals), 200)})"
        doc = sw.base
        for path, v in vals.items():
            doc = set_path(doc, path, v, where)
        try:
            parse_scenario(doc, where, Path(sw.base_dir))
        except PlannerError as exc:  # some checks (a value's range) do not know the point: name it
            if str(exc).startswith(where):
                raise
            raise PlannerError(f"{where}: {exc}") from None
        out.append((vals, doc))
    return out


def run_sweep(sw: Sweep, workers: int | None = None, scheduler: str | None = None,
              hardware_paths: Sequence[str | Path] = (), progress: Callable[[], Any] | None = None,
              on_total: Callable[[int], Any] | None = None) -> list[dict[str, Any]]:
    """Plan every point; the table's rows (plain dicts) in product order. ``on_total`` hears the point
    count once the points are checked, before any plan."""
    docs = scenario_docs(sw)
    if on_total is not None:
        on_total(len(docs))
    jobs = [make_job(doc, f"{sw.source} point {k}", sw.base_dir, hardware_paths) for k, (_, doc) in enumerate(docs)]
    rows = run_jobs(jobs, workers=workers, scheduler=scheduler, progress=progress)
    return [{"point": k, **{p: cell(v) for p, v in vals.items()}, **{c: row[c] for c in RESULT_COLUMNS}}
            for k, ((vals, _), row) in enumerate(zip(docs, rows))]


def check_table_output(path: Path | None) -> None:
    """Fail before any work when the table cannot be written in the asked format."""
    if path is None:
        return
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError("--output", f"a file name ending in {', '.join(TABLE_SUFFIXES)}", str(path))
    if suffix == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise InputError("--output", "a .csv or .xlsx file: Parquet needs pyarrow (pip install pyarrow)",
                             str(path))


def write_table(rows: list[dict[str, Any]], dst: Path) -> None:
    """Write the rows as CSV, XLSX (formula-like text kept as text, ``sheet.write_sheet``) or Parquet,
    whole or not at all."""
    import pandas as pd

    from planner.sheet import write_sheet

    df = pd.DataFrame(rows)
    df["total_gpus"] = df["total_gpus"].astype("Int64")  # whole numbers, blank where no plan
    if dst.suffix.lower() == ".parquet":
        import io

        from planner.files import write_atomic

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        write_atomic(dst, buf.getvalue())
        return
    write_sheet(df, dst)
