"""Regenerate the pictures in docs/img with the CLI (python scripts/gen_doc_images.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from planner.cli import app

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
COMMANDS = [
    ["roofline", "-m", "llama-3.1-70b", "-g", "H100-SXM", "--tp", "4", "--precision", "fp8", "--phase", "decode",
     "--batch", "64", "--context", "2048", "--plot", str(IMG / "roofline.png")],
    ["estimate", "-m", "llama-3.1-8b", "-g", "H100-SXM", "--isl", "1024", "--osl", "256", "--plot",
     str(IMG / "latency.png")],
    ["plan", str(ROOT / "examples" / "chat_nvidia.yaml"), "-q", "--plot", str(IMG / "plan.png"), "--plot-slo",
     str(IMG / "slo.png")],
]

if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    for cmd in COMMANDS:
        res = CliRunner().invoke(app, cmd)
        if res.exit_code:
            sys.exit(f"planner {' '.join(cmd)} failed: {res.output}")
        print(f"ran planner {cmd[0]}")
