"""Write docs/cli.md from the typer app: python scripts/gen_cli_docs.py"""

from pathlib import Path

from planner.cli import app
from planner.report.cli_docs import cli_markdown

out = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
out.write_text(cli_markdown(app))
print(f"wrote {out}")
