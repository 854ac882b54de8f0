"""Keep C libraries off standard output while they run.

``highspy.Highs()`` prints its banner from C straight to file descriptor 1, below Python's
``sys.stdout``, so ``planner plan --json`` would not be JSON. While any solve runs, descriptor 1
points at the null device; the first solve to enter saves it and the last to leave restores it
(solves run two at a time in threads, so a count under a lock decides who does what).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_state: dict[str, int | None] = {"depth": 0, "saved": None}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Redirect file descriptor 1 to the null device for the duration (re-entrant across threads)."""
    with _lock:
        if _state["depth"] == 0:
            try:
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            try:
                saved = os.dup(1)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.close(null)
                _state["saved"] = saved
            except OSError:  # no descriptor 1 (embedded interpreters): nothing to protect
                _state["saved"] = None
        _state["depth"] = int(_state["depth"] or 0) + 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] = int(_state["depth"] or 0) - 1
            saved = _state["saved"]
            if _state["depth"] == 0 and saved is not None:
                os.dup2(saved, 1)
                os.close(saved)
                _state["saved"] = None
