"""Write the layer diagram of docs/architecture.md from the real import graph.

Each module belongs to one layer; a module may import only from its own layer or the layers listed
before it (checked by tests/test_seam.py). The diagram lists, per layer, its modules and the layers
it actually imports from. Run: python scripts/gen_architecture.py (rewrites the block between the
markers in docs/architecture.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- layers:begin (scripts/gen_architecture.py) -->", "<!-- layers:end -->"

# (layer, module prefixes), lowest first
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core values", ("planner.errors", "planner.checks", "planner.files", "planner._yaml", "planner.paths",
                     "planner.speculative",
                     "planner.names", "planner.dtypes", "planner.parallel", "planner.hardware", "planner.models",
                     "planner.profile", "planner.model_limits", "planner.lengths", "planner.csvread",
                     "planner.traces", "planner.outputs", "planner.workload", "planner.scenario", "planner.capacity",
                     "planner.multi_scenario", "planner.energy", "planner.pricing", "planner.rate_profile",
                     "planner.plan_groups")),
    ("perf (roofline, memory)", ("planner.perf",)),
    ("deployment", ("planner.deployment",)),
    ("serving (fills the capacity table)", ("planner.serving",)),
    ("optimise (reads only the capacity table)", ("planner.optimise",)),
    ("planning", ("planner.plan_result", "planner.planning", "planner.pareto", "planner.uncertainty",
                  "planner.multi_result", "planner.multi_planning", "planner.day")),
    ("validation and calibration", ("planner.calib", "planner.validate", "planner.calibrate", "planner.sheet",
                                     "planner.batch", "planner.sweep",
                                     "planner.verify", "planner.verify_checks", "planner.verify_result")),
    ("report (tables, files, plots)", ("planner.report", "planner.emit")),
    ("facade and CLI", ("planner.api", "planner.cli", "planner.cli_plan", "planner.cli_fleet", "planner.cli_sweep",
                        "planner.cli_multi",
                        "planner")),
]


def layer_of(module: str) -> int:
    best, size = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > size:
                best, size = i, len(p)
    if best < 0:
        raise SystemExit(f"{module}: in no layer; add it to LAYERS in scripts/gen_architecture.py")
    return best


def module_imports() -> dict[str, set[str]]:
    out = {}
    for path in (ROOT / "planner").rglob("*.py"):
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("planner"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("planner"))
        out[mod] = deps - {mod}
    return out


def upward_imports() -> list[str]:
    """'a -> b' for every import from a higher layer (the rule the tests hold)."""
    return sorted(f"{m} -> {d}" for m, deps in module_imports().items() for d in deps if layer_of(d) > layer_of(m))


def diagram() -> str:
    imports = module_imports()
    lines = []
    for i in reversed(range(len(LAYERS))):
        name = LAYERS[i][0]
        mods = sorted(m.removeprefix("planner.") or "planner" for m in imports if layer_of(m) == i)
        uses = sorted({layer_of(d) for m, deps in imports.items() if layer_of(m) == i for d in deps} - {i})
        lines.append(f"[{i}] {name}")
        lines.append(f"      modules: {', '.join(mods)}")
        lines.append(f"      imports: {', '.join(f'[{u}]' for u in reversed(uses)) or '-'}")
        if i:
            lines.append("        |")
    return "```\n" + "\n".join(lines) + "\n```"


def main() -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{diagram()}\n{END}{tail}")
    bad = upward_imports()
    if bad:
        sys.exit("upward imports:\n" + "\n".join(bad))


if __name__ == "__main__":
    main()
