"""Errors the planner raises for bad input and impossible requests.

Every user-facing failure is one of these: the CLI prints ``str(err)`` on one line and
exits with code 2 (bad input) without a traceback. Library callers can catch
``PlannerError`` (or ``ValueError``, which it subclasses).
"""

from __future__ import annotations


class PlannerError(ValueError):
    """Base class: a one-line, user-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class InputError(PlannerError):
    """A field or file the user gave is malformed, missing or out of range."""

    def __init__(self, field: str, expected: str, got: object = None, *, where: str | None = None) -> None:
        loc = f"{where}: " if where else ""
        got_txt = "" if got is None else f" (got {got!r})"
        super().__init__(f"{loc}{field}: expected {expected}{got_txt}")
        self.field = field


class UnknownNameError(PlannerError):
    """A model or accelerator name that does not resolve; the message lists close matches."""


class InfeasibleError(PlannerError):
    """The request cannot be met; the message says why and what would make it feasible."""


class SolverLimitError(PlannerError):
    """The solver stopped at its time limit before finding any plan; the problem is not shown infeasible."""
