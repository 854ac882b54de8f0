"""Markdown reference of the CLI, generated from the typer app (docs/cli.md; a test keeps it current).

Reads the registered commands' signatures (typer ``OptionInfo``/``ArgumentInfo`` defaults and
type annotations), not typer's internal click objects, which change between releases.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")


def _rows(callback: Any) -> list[str]:
    rows = []
    for name, param in inspect.signature(callback).parameters.items():
        info = param.default
        decls = getattr(info, "param_decls", None) or ()
        is_arg = type(info).__name__ == "ArgumentInfo"
        label = name.upper() if is_arg else ", ".join(f"`{d}`" for d in decls) or f"`--{name.replace('_', '-')}`"
        kind = "argument" if is_arg else ("flag" if param.annotation in (bool, "bool") else _type(param.annotation))
        default = getattr(info, "default", None)
        empty = default is None or default is False or default is ... or default == [] or default == ()
        shown = "" if empty else f"`{default}`"
        help_text = " ".join((getattr(info, "help", "") or "").split())
        rows.append(f"| {label} | {kind} | {shown} | {help_text} |")
    return rows


def _command(title: str, callback: Any) -> list[str]:
    doc = " ".join((inspect.getdoc(callback) or "").split())
    rows = _rows(callback)
    out = [f"## `{title}`", "", doc, ""]
    if rows:
        out += ["| option | type | default | help |", "|---|---|---|---|", *rows, ""]
    return out


def cli_markdown(app: typer.Typer) -> str:
    lines = ["# CLI reference", "", "Generated from the typer app by `python scripts/gen_cli_docs.py`; "
             "`tests/test_docs.py` fails when this file is stale.", "",
             "Every command prints one line on stderr and exits 2 on bad input; `validate` exits 1 when a gate "
             "fails. Global option: `--hardware-path FILE_OR_DIR` (repeatable) adds accelerator YAMLs.", ""]
    entries: list[tuple[str, Any]] = []
    for cmd in app.registered_commands:
        entries.append((f"planner {cmd.name or cmd.callback.__name__}", cmd.callback))
    for group in app.registered_groups:
        for cmd in group.typer_instance.registered_commands:
            entries.append((f"planner {group.name} {cmd.name}", cmd.callback))
    for title, callback in sorted(entries):
        lines += _command(title, callback)
    return "\n".join(lines).rstrip() + "\n"
