"""Hand-gathered published serving rows (AMD MI300X, Huawei Ascend 910B/910C) in the measured schema.

``tests/data/calibration/published_amd_ascend.csv`` (its README gives every source) is in our schema
plus optional columns ``planner.validate.predict_row`` reads: ``spec_method``, ``spec_draft_tokens``
and ``spec_accept_length`` (the SGLang Ascend runs all used EAGLE-3 or DeepSeek MTP; predicted with
``planner.speculative`` at the stated accept length, so no fitted factor absorbs the speculative
speed-up), ``num_prompts`` (the benchmark's prompts, which fix a closed-loop row's prompts per client)
and ``max_seqs``, ``token_budget``, ``memory_fraction`` (engine settings a row's command states).

Engines without a profile of their own are scored with the nearest profile, and the reported name is
kept in ``engine_reported``:

- ``vllm-ascend`` -> ``vllm``: vLLM-Ascend is vLLM's hardware plugin for Ascend NPUs (RFC "Hardware
  pluggable", vllm-project/vllm#11162; github.com/vllm-project/vllm-ascend): vLLM's own scheduler,
  engine arguments and defaults, with Ascend kernels underneath, which the family's kernel factors
  describe.
- ``mindie`` -> ``vllm``: MindIE (Huawei's inference service) has no profile: its four rows are offline
  throughput only, which identify no engine overhead, so a profile of its own would be the vllm defaults
  under another name. They are scored with the vllm profile's Ascend block and take part in the
  family's kernel fit like every engine's rows; their error is reported per engine as ``mindie``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from planner.calib.measured import read_measured

BUNDLED = Path(__file__).resolve().parents[2] / "tests" / "data" / "calibration" / "published_amd_ascend.csv"
PROFILE_FOR_ENGINE = {"vllm-ascend": "vllm", "mindie": "vllm"}
EXTRA = ("spec_method", "spec_draft_tokens", "spec_accept_length", "num_prompts", "max_seqs", "token_budget",
         "memory_fraction")


def published_path(calibration: str | Path | None = None) -> Path | None:
    """``published_amd_ascend.csv`` in ``calibration`` when it is there, else the copy bundled with the
    tests (the file lives only there); None when neither exists (an installed package without tests)."""
    for cand in ([Path(calibration) / "published_amd_ascend.csv"] if calibration is not None else []) + [BUNDLED]:
        if cand.is_file():
            return cand
    return None


def from_published(path: str | Path) -> pd.DataFrame:
    """The published rows with ``engine`` set to the profile that scores them and ``engine_reported``
    the engine the source names (every row kept, in file order)."""
    df = read_measured(path)
    for c in EXTRA:
        if c not in df.columns:
            df[c] = float("nan")
    reported = df["engine"].astype(str).str.strip().str.lower()
    df["engine_reported"] = reported
    df["engine"] = [PROFILE_FOR_ENGINE.get(e, e) for e in reported]
    return df.reset_index(drop=True)
