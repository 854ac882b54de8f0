"""The groups of a saved plan (``planner plan --json``), checked field by field before a command uses
them: ``emit`` writes manifests from them and ``simulate --plan`` replays them, so a hand-edited
``instances: -3`` or ``tp: 1.5`` is refused with the group and the field named, not turned into
``replicas: -3`` or a lookup error."""

from __future__ import annotations

import math
from typing import Any

from planner.errors import InputError, PlannerError

ROLES = ("colocated", "prefill", "decode")
WHOLE = ("tp", "pp", "ep", "instances", "token_budget", "max_seqs")
TEXT = ("accelerator", "engine", "precision", "kv_dtype")


def _whole(val: Any, field: str, where: str) -> int:
    ok = not isinstance(val, bool) and isinstance(val, int | float) and math.isfinite(val) and float(val).is_integer()
    if not ok or val < 1:
        raise InputError(field, "a whole number >= 1", val, where=where)
    return int(val)


def check_group(i: int, g: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """Group ``i`` (0-based) of a plan with its fields checked: ``keys`` present, the counts whole numbers
    >= 1, ``role`` one of ``ROLES``, ``dp_attn`` a boolean, ``memory_fraction`` in (0, 1], names non-empty
    text. Returns a copy with the counts as ints."""
    where = f"plan group {i + 1}"
    if not isinstance(g, dict):
        raise PlannerError(f"{where}: expected an object of group fields, got {type(g).__name__}")
    missing = [k for k in keys if k not in g]
    if missing:
        raise PlannerError(f"{where}: missing {', '.join(missing)}; is this a `planner plan --json` file?")
    out = dict(g)
    for k in WHOLE:
        if k in g:
            out[k] = _whole(g[k], k, where)
    for k in TEXT:
        if k in g and (not isinstance(g[k], str) or not g[k].strip()):
            raise InputError(k, "a name (text)", g[k], where=where)
    if "role" in g and g["role"] not in ROLES:
        raise InputError("role", f"one of {', '.join(ROLES)}", g["role"], where=where)
    if "dp_attn" in g and not isinstance(g["dp_attn"], bool):
        raise InputError("dp_attn", "true or false", g["dp_attn"], where=where)
    if "memory_fraction" in g:
        mf = g["memory_fraction"]
        if isinstance(mf, bool) or not isinstance(mf, int | float) or not (0 < mf <= 1):
            raise InputError("memory_fraction", "a fraction in (0, 1]", mf, where=where)
        out["memory_fraction"] = float(mf)
    return out


def label_of(g: dict[str, Any]) -> str:
    """A saved group's label: the one the plan wrote (its routing table and router config name it), else
    ``capacity.group_label`` of its fields (plans written before labels were saved)."""
    from planner.capacity import group_label

    if isinstance(g.get("label"), str) and g["label"].strip():
        return g["label"]
    return group_label(g["accelerator"], g["tp"], g["pp"], g["ep"], g["dp_attn"], g["role"])


def check_one_rate_plan(d: Any, command: str) -> None:
    """Refuse, naming what it is, the JSON of a day plan (``schedule``) or a fleet plan (``models``), which
    ``command`` (replay, emit) does not take: it takes the plan of one model at one rate."""
    if not isinstance(d, dict):
        return
    if "schedule" in d and "groups" not in d:
        raise PlannerError(f"plan: this is a day plan (workload.rate_profile); {command} takes the plan of one rate: "
                           "plan the scenario without its rate_profile (or at one period's rate)")
    if "models" in d and "groups" not in d:
        raise PlannerError(f"plan: this is a fleet plan (models:); {command} takes the plan of one model: plan each "
                           "model's scenario on its own")
