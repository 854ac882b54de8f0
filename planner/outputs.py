"""Output paths: refuse to write over a file the command reads.

``sheet X.xlsx -o X.xlsx`` used to replace a two-sheet workbook with one sheet of plans, and
``validate X.csv --junit X.csv`` the measurements with a report. Every command that writes a file
calls ``refuse_overwrite`` with its inputs before any work, so the inputs are never touched.
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
