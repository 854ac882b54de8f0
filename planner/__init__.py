"""LLM inference capacity planner: roofline, memory and serving models plus an ILP optimiser.

Public API (plain values in, frozen objects with ``to_dict`` out)::

    from planner import plan, estimate, load_scenario, get_model, get_accelerator, memory, roofline
    from planner import plan_multi, load_any  # several models in one fleet (``models:`` scenarios)
    from planner import plan_day            # a day of rates (``workload.rate_profile`` scenarios)
    from planner import validate_frame      # the module planner.validate stays importable

The names load on first use (PEP 562), so ``import planner`` and the command line start fast.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "deployment": "planner.api", "memory": "planner.api", "roofline": "planner.api",
    "CapacityTable": "planner.capacity", "get_accelerator": "planner.hardware", "load_hardware": "planner.hardware",
    "get_model": "planner.models", "load_models": "planner.models", "Plan": "planner.plan_result",
    "plan": "planner.planning", "Scenario": "planner.scenario", "load_scenario": "planner.scenario",
    "parse_scenario": "planner.scenario", "Estimate": "planner.serving.estimate",
    "estimate": "planner.serving.estimate", "validate_frame": "planner.validate", "SLO": "planner.workload",
    "Workload": "planner.workload", "plan_multi": "planner.multi_planning", "MultiPlan": "planner.multi_result",
    "MultiScenario": "planner.multi_scenario", "load_any": "planner.multi_scenario", "plan_day": "planner.day",
    "DayPlan": "planner.day",
}

__all__ = sorted(_EXPORTS)

_FUNCTION_OVER_MODULE = frozenset({"deployment"})
"""Exports named like a submodule (``planner.deployment`` the function, ``planner/deployment.py`` the
module): importing the submodule would set the package attribute to the module and hide the function,
so the package keeps the attribute for the function; ``from planner.deployment import ...`` still reads
the module (from ``sys.modules``)."""


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTION_OVER_MODULE and isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: keep the function (resolved by __getattr__)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'planner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
