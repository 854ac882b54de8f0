"""A fleet scenario: several models, each with its workload and SLO, sharing quotas and a budget.

```yaml
name: two-services
accelerators: [L40S, H100-SXM]        # shared keys: one value for the whole fleet
availability: {H100-SXM: 8}           # GPUs of each type, summed over every model
budget_per_hour: 60                   # $/hour, summed over every model
redundancy: {spare_instances: 0}
objective: cost
slo: {percentile: 99}                 # a model key at the top level is every model's default
models:
  - name: chat
    model: llama-3.1-8b
    workload: {rate_rps: 20, input: "lognormal:mean=800,p99=4000", output: "lognormal:mean=250,p99=1000"}
    slo: {ttft_s: 1.0, tpot_s: 0.04}
  - name: code
    model: qwen2.5-32b
    precision: fp8
    workload: {rate_rps: 4, input: 2000, output: 400}
    slo: {ttft_s: 2.0, tpot_s: 0.05}
```

Shared keys (top level only): ``accelerators`` is also allowed per model (a subset), the others
are ``prices, pricing, availability, budget_per_hour, redundancy, objective, solver, cross_vendor_kv,
name, description``. Model keys (per entry, or at the top level as the default for every entry):
``model, precision, kv_dtype, engine, workload, buckets, slo, parallelism, engine_settings,
disaggregation, target_utilisation, queueing, speculative``. A model key in an entry replaces the default,
except the mappings
``slo, buckets, parallelism, engine_settings, queueing``, which merge key by key (the entry wins);
``workload`` is replaced whole. Each entry becomes an ordinary ``Scenario`` (checked as one), named by
its ``name`` (default: its ``model``); names are unique.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from planner._yaml import load_toml, load_yaml
from planner.errors import InputError, PlannerError, shorten
from planner.scenario import Scenario, _check_keys, parse_scenario

MAX_MODELS = 16
SHARED_KEYS = frozenset({"prices", "pricing", "availability", "budget_per_hour", "redundancy", "objective", "solver",
                         "cross_vendor_kv", "name", "description"})
MODEL_KEYS = frozenset({"model", "precision", "kv_dtype", "engine", "workload", "buckets", "slo", "parallelism",
                        "engine_settings", "disaggregation", "target_utilisation", "queueing", "accelerators",
                        "speculative"})
MERGED = frozenset({"slo", "buckets", "parallelism", "engine_settings", "queueing"})


@dataclass(frozen=True)
class MultiScenario:
    """Several ``Scenario`` values, one per model, that share one set of limits. The shared values
    (availability, budget, spares, objective, solver, prices, cross_vendor_kv) are the same in every
    entry; read them from any, e.g. ``models[0]``."""

    models: tuple[Scenario, ...]
    name: str = ""
    description: str = ""
    source: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sc.name for sc in self.models)

    @property
    def shared(self) -> Scenario:
        """The entry to read shared values from."""
        return self.models[0]

    def with_shared(self, **kw: Any) -> MultiScenario:
        """Every entry with the same shared fields replaced (re-validated), e.g. ``budget_per_hour=50``."""
        return replace(self, models=tuple(replace(sc, **kw) for sc in self.models))


def is_multi(raw: Any) -> bool:
    return isinstance(raw, dict) and "models" in raw


def _merge(default: Any, entry: Any, key: str) -> Any:
    if key in MERGED and isinstance(default, dict) and isinstance(entry, dict):
        return {**default, **entry}
    return entry


def parse_multi(raw: dict, where: str = "scenario", base: Path | None = None) -> MultiScenario:
    """Validate a ``models:`` document: one ``Scenario`` per entry, defaults and shared keys laid in."""
    base = base or Path.cwd()
    _check_keys(raw, SHARED_KEYS | MODEL_KEYS | {"models"}, where)
    entries = raw["models"]
    if not isinstance(entries, list) or not entries:
        raise InputError("models", "a non-empty list of model entries (each with model, workload and slo)",
                         entries, where=where)
    if len(entries) > MAX_MODELS:
        raise InputError("models", f"at most {MAX_MODELS} entries", len(entries), where=where)
    defaults = {k: v for k, v in raw.items() if k in MODEL_KEYS}
    shared = {k: v for k, v in raw.items() if k in SHARED_KEYS and k not in ("name", "description")}
    out: list[Scenario] = []
    for j, entry in enumerate(entries):
        field = f"models[{j}]"
        if not isinstance(entry, dict):
            raise InputError(field, "a mapping with model, workload and slo", entry, where=where)
        for key in entry:
            if key in SHARED_KEYS - {"name"}:
                raise PlannerError(f"{where}: {field}.{shorten(key)}: shared by every model; set it once at the "
                                   f"top level")
        _check_keys(entry, MODEL_KEYS | {"name"}, where, f"{field}.")
        if "model" not in entry and "model" not in defaults:
            raise InputError(f"{field}.model", "a model name or config.json path", where=where)
        name = entry.get("name", entry.get("model", defaults.get("model")))
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{field}.name", "a non-empty name (or a model to name the entry after)", name,
                             where=where)
        if name in (sc.name for sc in out):
            raise InputError(f"{field}.name", "a name no other entry has (two entries serve the same model: "
                             "name them)", name, where=where)
        doc = dict(defaults)
        for key, val in entry.items():
            if key != "name":
                doc[key] = _merge(defaults.get(key), val, key)
        doc |= shared
        doc["name"] = name
        label = f"{where} {field} ({shorten(name, 40)})"
        try:
            sc_j = parse_scenario(doc, label, base)
        except PlannerError as exc:  # a check deep in a value (Workload, SLO) does not know the entry: name it
            text = str(exc)
            raise PlannerError(text if text.startswith(label) else f"{label}: {text}") from None
        if sc_j.rate_profile is not None:  # planning it at its peak alone would be a silent wrong answer
            raise InputError(f"{field}.workload.rate_profile", "a single rate in a fleet of models (rate profiles "
                             "are planned one model at a time: plan that model's own scenario)", where=where)
        out.append(sc_j)
    return MultiScenario(tuple(out), name=str(raw.get("name") or ""), description=str(raw.get("description") or ""))


def load_any(path: str | Path) -> Scenario | MultiScenario:
    """A scenario file (``-``: YAML on standard input) as a ``Scenario``, or as a ``MultiScenario``
    when it has ``models:``; the same checks and messages as ``scenario.load_scenario``."""
    p = Path(path)
    stdin = str(path) == "-"
    raw = load_toml(p, "scenario") if p.suffix.lower() == ".toml" and not stdin else load_yaml(p, "scenario")
    where, base = ("<stdin>", Path.cwd()) if stdin else (str(p), p.parent)
    if raw is None:
        raise PlannerError("scenario <stdin>: empty, expected model, workload and slo" if stdin else
                           f"scenario {p}: empty file, expected model, workload and slo")
    source = "" if stdin else str(p.resolve())
    if is_multi(raw):
        return replace(parse_multi(raw, where, base), source=source)
    return replace(parse_scenario(raw, where, base), source=source)
