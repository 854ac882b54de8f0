"""Docs stay true: the CLI reference is current and the quickstart's commands run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.report.cli_docs import cli_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == cli_markdown(app), \
        "docs/cli.md is stale: run python scripts/gen_cli_docs.py"


def quickstart_commands() -> list[str]:
    text = (ROOT / "docs" / "quickstart.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        cmds += [line.strip() for line in block.splitlines() if line.strip().startswith("planner ")]
    return cmds


@pytest.mark.parametrize("command", quickstart_commands())
def test_quickstart_command_runs(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, shlex.split(command)[1:])
    assert res.exit_code == 0, f"{command}\n{res.output}"


def test_api_examples_run(capsys):
    text = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "llama-3.1-70b 70.5" in out and "H100-SXM 80.0 1979.0" in out
