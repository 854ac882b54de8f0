from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "calibration"
BUNDLED = REPO / "tests" / "data" / "calibration"


@pytest.fixture(scope="session")
def calibration_dir() -> Path:
    """../shared/calibration when present, else the copy bundled with the tests."""
    for cand in (SHARED, BUNDLED):
        if (cand / "aiconfigurator_silicon_sample.csv").is_file():
            return cand
    pytest.skip("no calibration data found")
