"""The keys docs/json.md promises are present in the real --json output of the installed console
script, run in a subprocess: stdout must parse as JSON as a whole (a C library writing below
Python's stdout, like the HiGHS banner, would break it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "json.md").read_text()


def documented(heading: str) -> set[str]:
    block = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)", "", block.split("\n", 1)[1])
    return {k.strip().strip("`") for k in text.replace("\n", " ").split(",") if k.strip().strip("`")}


COMMANDS = {
    "## `planner memory --json`": ["memory", "-m", "llama-3.1-8b", "-g", "h100", "--json"],
    "## `planner roofline --json`": ["roofline", "-m", "llama-3.1-8b", "-g", "h100", "--json"],
    "## `planner estimate --json`": ["estimate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "512", "--osl", "64",
                                    "--rate", "2", "--ttft", "1", "--json"],
    "## `planner plan --json`": ["plan", str(ROOT / "examples" / "budget_capped.yaml"), "--json"],
    "## `planner plan DAY_SCENARIO --json`": ["plan", str(ROOT / "examples" / "day_profile.yaml"), "--json"],
    "## `planner capacity SCENARIO --json`": ["capacity", str(ROOT / "examples" / "budget_capped.yaml"), "--json"],
    "## `planner simulate --json`": ["simulate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "256", "--osl", "32",
                                    "--rate", "2", "--requests", "50", "--json"],
}


def planner_exe() -> str:
    """The console script installed beside this interpreter (the README's install puts it there)."""
    exe = Path(sys.executable).with_name("planner")
    found = str(exe) if exe.exists() else shutil.which("planner")
    assert found, "the planner console script is not installed: pip install -e ."
    return found


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([planner_exe(), *args], capture_output=True, text=True, timeout=300)


_CACHE: dict[str, subprocess.CompletedProcess] = {}


def result(heading: str) -> subprocess.CompletedProcess:
    if not _CACHE:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for h, r in zip(COMMANDS, pool.map(run, COMMANDS.values())):
                _CACHE[h] = r
    return _CACHE[heading]


@pytest.mark.parametrize("heading", sorted(COMMANDS))
def test_documented_keys_present(heading):
    res = result(heading)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)  # the whole of stdout: no banner, no progress, nothing else
    keys = documented(heading)
    assert keys and keys <= set(data), keys - set(data)


def test_list_commands():
    for heading, args in (("## `planner hardware list --json`", ["hardware", "list", "--json"]),
                          ("## `planner models list --json`", ["models", "list", "--json"])):
        res = run(args)
        assert res.returncode == 0, res.stderr
        rows = json.loads(res.stdout)
        keys = {k for k in documented(heading) if k != "a list"}
        assert all(keys <= set(r) for r in rows), keys - set(rows[0])


def test_infeasible_plan_json_exits_1_with_nothing_on_stdout(tmp_path):
    text = (ROOT / "examples" / "budget_capped.yaml").read_text()
    assert "budget_per_hour: 15" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("budget_per_hour: 15", "budget_per_hour: 0.01"))
    res = run(["plan", str(bad), "--json"])
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and "budget" in res.stderr
