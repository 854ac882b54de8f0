"""The fleet commands of ``planner``: emit (launch commands, manifests) and pareto. Parse, call, render."""

from __future__ import annotations

from pathlib import Path

import typer

from planner.cli import _JSON, _TPOT, _hw, app, check_output, err, fail, guarded, out, print_json, refuse_inputs
from planner.report import tables


def check_emit_dir(out_dir: Path, *inputs: Path | None) -> None:
    """Fail before any work when the emit folder would overwrite something."""
    from planner.emit import check_out_dir

    check_out_dir(out_dir, tuple(p for p in inputs if p is not None))


def emit_plan(plan_dict: dict, out_dir: Path, inputs: tuple[Path, ...]) -> list:
    from planner.emit import emit_files, write_tree

    written = write_tree(emit_files(plan_dict, hw=_hw()), out_dir, inputs)
    err.print(f"wrote {len(written)} files to {out_dir} (start with {out_dir / 'README.md'})", highlight=False)
    return list(written)


@app.command("emit")
@guarded
def emit_cmd(plan_json: Path = typer.Argument(..., help="A plan written by `planner plan --json`."),
             out_dir: Path = typer.Argument(..., help="New (or empty) folder for the fleet files."),
             as_json: bool = _JSON) -> None:
    """Engine launch commands, Kubernetes manifests, router config and a README for a saved plan."""
    import json

    from planner._yaml import read_text

    check_emit_dir(out_dir, plan_json)
    text = read_text(plan_json, "plan")  # a missing file, a folder, unreadable bytes: one line naming it
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"plan {plan_json}: not JSON ({exc.msg} at line {exc.lineno}); give the output of planner plan --json")
    if not isinstance(data, dict):
        fail(f"{plan_json}: expected the JSON object of `planner plan --json`")
    written = emit_plan(data, out_dir, (plan_json,))
    if as_json:
        print_json({"folder": str(out_dir), "files": [str(w) for w in written]})


@app.command("pareto")
@guarded
def pareto_cmd(model: str = typer.Option(..., "--model", "-m", help="Model."),
               gpu: str = typer.Option(..., "--gpu", help="Accelerator."),
               isl: int = typer.Option(1024, "--isl", help="Input tokens per request."),
               osl: int = typer.Option(256, "--osl", help="Output tokens per request."),
               precision: str = typer.Option("bf16", "--precision", "-p"),
               kv_dtype: str | None = typer.Option(None, "--kv-dtype"),
               engine: str = typer.Option("vllm", "--engine", "-e"),
               tpot: float | None = _TPOT,
               colocated_only: bool = typer.Option(False, "--colocated-only", help="Leave disaggregated out."),
               png: Path | None = typer.Option(None, "--png", help="Write the front as a PNG (or .svg)."),
               csv: Path | None = typer.Option(None, "--csv", help="Write every point (on_front marks the front)."),
               as_json: bool = _JSON) -> None:
    """Tokens/s/GPU against tokens/s/user for every parallelism, colocated and disaggregated."""
    import dataclasses

    from planner.files import write_atomic
    from planner.pareto import best_under_slo, sweep
    from planner.report import plots

    check_output(csv, "--csv", (".csv",))
    refuse_inputs(csv, "--csv")
    if png is not None:
        plots._check_path(png, "--png")
        refuse_inputs(png, "--png")
    if tpot is not None and tpot <= 0:
        fail(f"--tpot: expected seconds > 0 (got {tpot})")
    pts = sweep(model, gpu, isl, osl, precision=precision, kv_dtype=kv_dtype, engine=engine, hw=_hw(),
                disaggregated=not colocated_only)
    rows = [dataclasses.asdict(p) for p in pts]
    best = best_under_slo(pts, tpot)
    if csv is not None:
        import pandas as pd

        write_atomic(csv, pd.DataFrame(rows).to_csv(index=False).encode())
    if png is not None:
        plots.pareto_plot(rows, png, f"{model} on {gpu}, ISL {isl} / OSL {osl} ({engine}, {precision})", tpot)
    front = [r for r in rows if r["on_front"]]
    if as_json:
        print_json({"model": model, "gpu": gpu, "isl": isl, "osl": osl, "tpot_limit_s": tpot, "front": front,
                    "best_under_slo": dataclasses.asdict(best) if best else None, "points": len(rows)})
        return
    tables.pareto(front, best, tpot, out)
