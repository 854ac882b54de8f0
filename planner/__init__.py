"""LLM inference capacity planner: roofline, memory and serving models plus an ILP optimiser."""

from __future__ import annotations

__version__ = "0.1.0"
