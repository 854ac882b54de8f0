"""Engine flag names as data: ``planner/data/engine_flags/{vllm,sglang,trtllm}.yaml``, each with the
engine version it was read from and the documentation pages it cites."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from planner.errors import PlannerError

DATA = Path(__file__).resolve().parents[1] / "data"
ENGINES = ("vllm", "sglang", "trtllm")


@dataclass(frozen=True)
class EngineFlags:
    """One engine's recorded flag names: ``settings`` maps a planner setting to its flag, ``flags``
    lists every flag the emitter may write, ``raw`` keeps the rest of the file (values, sources)."""

    engine: str
    version: str
    command: tuple[str, ...]
    port: int
    health_path: str
    settings: dict[str, str]
    flags: frozenset[str]
    raw: dict[str, Any]

    def flag(self, setting: str) -> str:
        """The flag that carries ``setting``; a setting the data does not map is a bug in the data file."""
        try:
            return self.settings[setting]
        except KeyError:
            raise PlannerError(f"engine_flags/{self.engine}.yaml: no flag recorded for {setting!r}") from None

    def value(self, table: str, key: str) -> str | None:
        """A recorded value mapping such as ``kv_dtype_values`` (None where the planner dtype has none)."""
        return (self.raw.get(table) or {}).get(key)


@functools.cache
def engine_flags(engine: str) -> EngineFlags:
    """Load the flag data of ``engine`` (vllm, sglang or trtllm)."""
    if engine not in ENGINES:
        raise PlannerError(f"engine: no launch-flag data for {engine!r}; expected one of {', '.join(ENGINES)}")
    path = DATA / "engine_flags" / f"{engine}.yaml"
    raw = yaml.safe_load(path.read_text())
    return EngineFlags(engine=raw["engine"], version=str(raw["version"]), command=tuple(raw["command"]),
                       port=int(raw["port"]), health_path=str(raw["health_path"]), settings=dict(raw["settings"]),
                       flags=frozenset(raw["flags"]), raw=raw)


@functools.cache
def k8s_accelerators() -> dict[str, Any]:
    """Device-plugin resource names, images and the node label per vendor."""
    return yaml.safe_load((DATA / "k8s_accelerators.yaml").read_text())
