"""The keys docs/json.md promises are present in the real --json output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app

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
    "## `planner simulate --json`": ["simulate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "256", "--osl", "32",
                                    "--rate", "2", "--requests", "50", "--json"],
}


@pytest.mark.parametrize("heading", sorted(COMMANDS))
def test_documented_keys_present(heading):
    res = CliRunner().invoke(app, COMMANDS[heading])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    keys = documented(heading)
    assert keys and keys <= set(data), keys - set(data)


def test_list_commands():
    for heading, args in (("## `planner hardware list --json`", ["hardware", "list", "--json"]),
                          ("## `planner models list --json`", ["models", "list", "--json"])):
        rows = json.loads(CliRunner().invoke(app, args).stdout)
        keys = {k for k in documented(heading) if k != "a list"}
        assert all(keys <= set(r) for r in rows), keys - set(rows[0])
