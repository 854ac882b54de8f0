"""LLM inference capacity planner: roofline, memory and serving models plus an ILP optimiser.

Public API (plain values in, frozen objects with ``to_dict`` out)::

    from planner import plan, estimate, load_scenario, get_model, get_accelerator, memory, roofline
    from planner import validate_frame      # the module planner.validate stays importable
"""

from __future__ import annotations

from planner.api import deployment, memory, roofline
from planner.capacity import CapacityTable
from planner.hardware import get_accelerator, load_hardware
from planner.models import get_model, load_models
from planner.plan_result import Plan
from planner.planning import plan
from planner.scenario import Scenario, load_scenario, parse_scenario
from planner.serving.estimate import Estimate, estimate
from planner.validate import validate_frame
from planner.workload import SLO, Workload

__version__ = "0.1.0"

__all__ = ["SLO", "CapacityTable", "Estimate", "Plan", "Scenario", "Workload", "deployment", "estimate",
           "get_accelerator", "get_model", "load_hardware", "load_models", "load_scenario", "memory",
           "parse_scenario", "plan", "roofline", "validate_frame"]
