from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO.parent / "shared" / "calibration"


@pytest.fixture(scope="session")
def calibration_dir() -> Path:
    if not CALIBRATION.is_dir():
        pytest.skip("../shared/calibration is not present next to the checkout")
    return CALIBRATION
