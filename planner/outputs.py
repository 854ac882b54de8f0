"""Output paths: refuse to write over a file the command reads.

``sheet X.xlsx -o X.xlsx`` used to replace a two-sheet workbook with one sheet of plans, and
``validate X.csv --junit X.csv`` the measurements with a report. Every command that writes a file
calls ``refuse_overwrite`` with its inputs before any work, so the inputs are never touched.

A scenario's inputs include the files it names (``workload.trace``, ``hist:`` lengths, a sweep's
``base``, a model's config.json): ``referenced_files`` finds them, so ``plan S.yaml --csv trace.csv``
cannot replace the trace either.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from planner.errors import PlannerError, shorten


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` are one file: the same resolved path, or (both existing) the same inode,
    which also catches hard links and symlinks."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
        return pa.resolve() == pb.resolve()
    except (OSError, ValueError, RuntimeError):  # unreadable, too long, a NUL byte, a symlink loop
        return False


def refuse_overwrite(output: str | Path | None, *inputs: str | Path | None, flag: str = "--output",
                     extra_inputs: Iterable[str | Path] = ()) -> None:
    """Raise a one-line PlannerError when ``output`` is one of ``inputs`` (None entries are skipped).

    A folder among the inputs (``--hardware-path DIR``) protects every file directly in it.
    """
    if output is None:
        return
    for inp in (*inputs, *extra_inputs):
        if inp is None:
            continue
        candidates = [Path(inp)]
        try:
            if Path(inp).is_dir():
                candidates = list(Path(inp).iterdir())
        except OSError:
            pass
        if any(same_file(output, c) for c in candidates):
            raise PlannerError(f"{flag}: {shorten(output, 200)} is also an input of this command; "
                               "write the output to another file")


DOC_SUFFIXES = (".yaml", ".yml", ".toml")
MAX_REF_DEPTH = 4


def referenced_files(path: str | Path, depth: int = 0) -> list[Path]:
    """Files a scenario-like document (YAML or TOML) names anywhere in its values, relative to its own
    folder or absolute, with a ``hist:`` prefix stripped; followed into the YAML/TOML files it names (a
    sweep's base scenario) up to ``MAX_REF_DEPTH``. A document that cannot be read names nothing here
    (its loader reports why)."""
    p = Path(path)
    if depth > MAX_REF_DEPTH or p.suffix.lower() not in DOC_SUFFIXES:
        return []
    from planner._yaml import load_toml, load_yaml

    try:
        raw = load_toml(p) if p.suffix.lower() == ".toml" else load_yaml(p)
    except Exception:  # noqa: BLE001 - any unreadable document: the command's own loader says why
        return []
    found: list[Path] = []

    def walk(val: object) -> None:
        if isinstance(val, dict):
            for v in val.values():
                walk(v)
        elif isinstance(val, list | tuple):
            for v in val:
                walk(v)
        elif isinstance(val, str) and 0 < len(val) < 4096:
            text = val[5:] if val.startswith("hist:") else val
            cand = Path(text) if Path(text).is_absolute() else p.parent / text
            try:
                if cand.is_file() and not same_file(cand, p) and not any(same_file(cand, f) for f in found):
                    found.append(cand)
                    found.extend(referenced_files(cand, depth + 1))
            except (OSError, ValueError):
                pass

    walk(raw)
    return found
