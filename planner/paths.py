"""Where the shipped databases live: the source tree, or the installed share/ folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PKG_NAME = "llm-capacity-planner"


def data_dir(name: str) -> Path:
    """Folder of a shipped database (``hardware_db`` or ``models_db``).

    Looks, in order, at ``$PLANNER_<NAME>`` (e.g. ``PLANNER_HARDWARE_DB``), the source tree
    next to the package (editable installs and checkouts) and ``<prefix>/share/`` where a
    wheel install puts the data files.
    """
    env = os.environ.get(f"PLANNER_{name.upper()}")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent / name
    if here.is_dir():
        return here
    for prefix in (sys.prefix, sys.base_prefix):
        cand = Path(prefix) / "share" / _PKG_NAME / name
        if cand.is_dir():
            return cand
    return here
