"""Errors the planner raises for bad input and impossible requests.

Every user-facing failure is one of these: the CLI prints ``str(err)`` on one line and
exits with code 2 (bad input) without a traceback. Library callers can catch
``PlannerError`` (or ``ValueError``, which it subclasses).
"""

from __future__ import annotations

MAX_ECHO = 80  # characters of a user's value echoed back in a message
MAX_MESSAGE = 2000  # a whole message longer than this is cut in the middle


def shorten(text: object, limit: int = MAX_ECHO) -> str:
    """``text`` as a string of at most ``limit`` characters: the start, an ellipsis and the character count."""
    s = str(text)
    if len(s) <= limit:
        return s
    return f"{s[:limit]}... ({len(s):,} characters)"


def echo(value: object, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` shortened for a message, so a 1 MB name is not printed whole."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    return shorten(repr(value), limit)


class PlannerError(ValueError):
    """Base class: a one-line, user-facing message (whitespace folded, at most MAX_MESSAGE characters)."""

    def __init__(self, message: str) -> None:
        text = " ".join(str(message).split())
        if len(text) > MAX_MESSAGE:
            half = MAX_MESSAGE // 2
            text = f"{text[:half]} ... {text[-half:]}"
        super().__init__(text)


class InputError(PlannerError):
    """A field or file the user gave is malformed, missing or out of range."""

    def __init__(self, field: str, expected: str, got: object = None, *, where: str | None = None) -> None:
        loc = f"{where}: " if where else ""
        got_txt = "" if got is None else f" (got {echo(got)})"
        super().__init__(f"{loc}{field}: expected {expected}{got_txt}")
        self.field = field


class UnknownNameError(PlannerError):
    """A model or accelerator name that does not resolve; the message lists close matches."""


class InfeasibleError(PlannerError):
    """The request cannot be met; the message says why and what would make it feasible."""


class SolverLimitError(PlannerError):
    """The solver stopped at its time limit before finding any plan; the problem is not shown infeasible."""
