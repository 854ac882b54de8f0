"""The hostile-input corpus (tests/hostile/cases.yaml) through the installed ``planner`` console script.

Every case must exit 1 or 2 with one line on stderr naming the field or file, no traceback and no
"internal error", within 10 s and 500 MB, leaving every input file byte-for-byte as it was.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "hostile"
TIME_LIMIT_S = 10.0
MEMORY_LIMIT_MB = 500.0
ADDRESS_SPACE_CAP = 8 * 2**30  # safety net so a regression cannot take the machine down
PLANNER = shutil.which("planner", path=str(Path(sys.executable).parent)) or shutil.which("planner")


@dataclass
class Outcome:
    """What one run of the console script did."""

    code: int
    stdout: str
    stderr: str
    wall_s: float
    maxrss_mb: float


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))


def run_planner(argv: list[str], cwd: Path) -> Outcome:
    """Run the console script; its own peak RSS comes from wait4, so parallel runs do not mix."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONWARNINGS": "default"}
    env.pop("PLANNER_HARDWARE_PATH", None)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen([PLANNER, *argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd,
                                env=env, preexec_fn=_limit_child)
        timer = threading.Timer(TIME_LIMIT_S * 3, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Outcome(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                       wall, usage.ru_maxrss / 1024)


def _cases() -> list[dict]:
    return yaml.safe_load((CORPUS / "cases.yaml").read_text())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _argv(case: dict, file: Path | None, tmp: Path) -> list[str]:
    subst = {"{file}": str(file) if file else "", "{tmp}": str(tmp), "{data}": str(ROOT / "tests" / "data")}
    out = []
    for arg in case["argv"]:
        for k, v in subst.items():
            arg = arg.replace(k, v)
        out.append(arg)
    return out


def _check(case: dict, res: Outcome) -> list[str]:
    """Every way this run breaks the contract (empty when it keeps it)."""
    problems = []
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if res.code not in (1, 2) or ("exit" in case and res.code != case["exit"]):
        problems.append(f"exit {res.code}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines")
    if "Traceback" in res.stderr or "internal error" in res.stderr:
        problems.append("traceback or internal error")
    want = case.get("expect") or case.get("file") or ""
    if want.lower() not in res.stderr.lower():
        problems.append(f"stderr does not name {want!r}")
    if len(res.stderr) > 2100:
        problems.append(f"stderr is {len(res.stderr)} characters")
    if res.wall_s > TIME_LIMIT_S:
        problems.append(f"took {res.wall_s:.1f} s")
    if res.maxrss_mb > MEMORY_LIMIT_MB:
        problems.append(f"peak RSS {res.maxrss_mb:.0f} MB")
    return problems


def test_corpus_is_large_and_every_file_is_used():
    cases = _cases()
    files = {c["file"] for c in cases if "file" in c}
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_file() and p.name != "cases.yaml"}
    assert len(files) >= 100
    assert files == on_disk
    assert all((CORPUS / f).is_file() for f in files)


def test_console_script_is_installed():
    assert PLANNER is not None, "the planner console script is not installed in this environment (pip install -e .)"
    assert os.access(PLANNER, os.X_OK)


def test_every_hostile_case_fails_cleanly(tmp_path):
    assert PLANNER is not None, "the planner console script is not installed (pip install -e .)"
    cases = _cases()
    before = {p.name: _digest(p) for p in CORPUS.iterdir() if p.is_file()}

    def one(i_case: tuple[int, dict]) -> tuple[dict, Outcome, list[str]]:
        i, case = i_case
        scratch = tmp_path / f"case{i}"
        scratch.mkdir()
        file = CORPUS / case["file"] if "file" in case else None
        res = run_planner(_argv(case, file, scratch), scratch)
        return case, res, _check(case, res)

    workers = max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, enumerate(cases)))
    after = {p.name: _digest(p) for p in CORPUS.iterdir() if p.is_file()}
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"input files changed: {changed}"
    assert set(after) == set(before), f"files appeared in the corpus folder: {sorted(set(after) - set(before))}"
    bad = [f"{c['name']}: {', '.join(p)} | {r.stderr.strip()[:300]}" for c, r, p in results if p]
    assert not bad, f"{len(bad)} of {len(cases)} cases broke the contract:\n" + "\n".join(bad)


def test_xlsx_sheet_output_is_input_is_refused(tmp_path):
    """A two-sheet workbook given as its own output is refused and left as it was."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["name", "model", "rate_rps", "input", "output", "ttft_s", "tpot_s"])
    ws.append(["a", "llama-3.1-8b", 2, "512", "128", 1.5, 0.05])
    wb.create_sheet("notes").append(["keep me"])
    path = tmp_path / "book.xlsx"
    wb.save(path)
    digest = _digest(path)
    res = run_planner(["sheet", str(path), "-o", str(path), "--quiet"], tmp_path)
    assert res.code == 2
    assert "--output" in res.stderr and "also an input" in res.stderr
    assert _digest(path) == digest
    assert openpyxl.load_workbook(path).sheetnames == ["Sheet", "notes"]


def test_xlsx_sheet_with_text_cell_rejects_only_that_row(tmp_path):
    """The XLSX twin of a CSV case: an unknown column is refused naming it."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.append(["model", "rate_rps", "input", "output", "ttft_s", "availabilty"])
    wb.active.append(["llama-3.1-8b", 2, "512", "128", 1.5, "H100-SXM: 2"])
    path = tmp_path / "typo.xlsx"
    wb.save(path)
    res = run_planner(["sheet", str(path), "-o", str(tmp_path / "out.csv"), "--quiet"], tmp_path)
    assert res.code == 2
    assert "availabilty" in res.stderr and "did you mean availability" in res.stderr
    assert not (tmp_path / "out.csv").exists()
