"""LLM inference capacity planner: roofline, memory and serving models plus an ILP optimiser.

Public API (plain values in, frozen objects with ``to_dict`` out)::

    from planner import plan, estimate, load_scenario, get_model, get_accelerator, memory, roofline
    from planner import plan_multi, load_any  # several models in one fleet (``models:`` scenarios)
    from planner import validate_frame      # the module planner.validate stays importable

The names load on first use (PEP 562), so ``import planner`` and the command line start fast.
"""

from __future__ import annotations

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
    "MultiScenario": "planner.multi_scenario", "load_any": "planner.multi_scenario",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'planner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
