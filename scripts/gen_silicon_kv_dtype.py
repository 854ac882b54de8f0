"""Write planner/data/silicon_kv_dtype.csv: the KV-cache dtype each InferenceX silicon row ran with.

The silicon table does not record the KV-cache dtype. InferenceX's launch scripts state it
(``--kv-cache-dtype fp8`` / ``fp8_e4m3`` for vLLM and SGLang, ``kv_cache_config: dtype: fp8`` for
TensorRT-LLM), one script per model, precision, GPU and framework
(``benchmarks/<model>_<precision>_<gpu>[_trt][_slurm|_docker].sh``, later under
``benchmarks/single_node/``). For every InferenceX row this reads the script of its model, precision,
GPU and framework as it stood at the last commit on or before the row's measurement date, and writes
the dtype the script sets: ``fp8`` where it sets one, ``auto`` where it sets none (the engine then
keeps the KV cache in the model's activation dtype, 16-bit). Rows whose script is not found are left
out (the reader's default applies). Speculative (MTP) scripts are not read: those rows are not scored.

Usage (a local clone of https://github.com/SemiAnalysisAI/InferenceX; nothing is fetched at run time
and the planner never reads the clone):

    python scripts/gen_silicon_kv_dtype.py --inferencex /path/to/InferenceX [--calibration ../shared/calibration]
"""

from __future__ import annotations

import argparse
import bisect
import re
import subprocess
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "planner" / "data" / "silicon_kv_dtype.csv"
PREFIX = {"deepseek-ai/DeepSeek-R1": "dsr1", "deepseek-ai/DeepSeek-V3": "dsr1", "openai/gpt-oss-120b": "gptoss",
          "MiniMaxAI/MiniMax-M2.5": "minimaxm2.5", "meta-llama/Llama-3.1-70B": "70b",
          "moonshotai/Kimi-K2.5": "kimik2.5", "zhipuai/GLM-5": "glm5", "Qwen/Qwen3.5-397B-A17B": "qwen3.5"}
KV_FLAG = re.compile(r"kv[-_]cache[-_]dtype[\"'\s:=]+([A-Za-z0-9_]+)")
TRT_KV = re.compile(r"kv_cache_config:\s*\n(?:\s+[a-z_]+:.*\n)*?\s+dtype:\s*([A-Za-z0-9_]+)")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False).stdout


def script_name(prefix: str, precision: str, gpu: str, backend: str) -> re.Pattern:
    trt = "_trt" if backend == "trtllm" else ""
    return re.compile(rf"(^|/){re.escape(prefix)}_{precision}_{gpu}{trt}(_slurm|_docker)?\.sh$")


def kv_of(text: str, backend: str) -> str:
    found = KV_FLAG.findall(text) if backend != "trtllm" else TRT_KV.findall(text)
    vals = {v.lower() for v in found if v.lower() != "auto"}
    if any(v.startswith("fp8") for v in vals):
        return "fp8"
    return "auto" if not vals else sorted(vals)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inferencex", type=Path, required=True, help="a git clone of SemiAnalysisAI/InferenceX")
    ap.add_argument("--calibration", type=Path, default=ROOT.parent / "shared" / "calibration")
    args = ap.parse_args()
    repo = args.inferencex
    log = [ln.split() for ln in _git(repo, "log", "--format=%H %ad", "--date=short", "--", "benchmarks").split("\n")
           if ln.strip()]
    log.sort(key=lambda x: x[1])
    dates = [d for _, d in log]
    silicon = pd.read_csv(args.calibration / "aiconfigurator_silicon_sample.csv")
    agg = silicon[silicon["mode"] == "agg"]
    src = agg["silicon_data_source"].astype(str)
    date = src.str.extract(r"measured=(\d{4}-\d{2}-\d{2})")[0]
    ours = src.str.contains("aic-auto-gap-analysis", regex=False)
    trees: dict[str, list[str]] = {}
    texts: dict[tuple[str, str], str] = {}
    rows = []
    for i, row in agg.iterrows():
        prefix = PREFIX.get(str(row["model_path"]))
        if prefix is None or ours[i] or pd.isna(date[i]):
            continue
        k = bisect.bisect_right(dates, date[i]) - 1
        if k < 0:
            continue
        commit = log[k][0]
        if commit not in trees:
            trees[commit] = _git(repo, "ls-tree", "-r", "--name-only", commit, "--", "benchmarks").split("\n")
        pat = script_name(prefix, str(row["precision"]), str(row["system"]).split("_")[0], str(row["backend"]))
        paths = sorted(p for p in trees[commit] if pat.search(p) and "multi_node" not in p and "agentic" not in p)
        if not paths:
            continue
        path = paths[0]
        if (commit, path) not in texts:
            texts[(commit, path)] = _git(repo, "show", f"{commit}:{path}")
        rows.append({"id": row["id"], "kv_dtype": kv_of(texts[(commit, path)], str(row["backend"])),
                     "script": path, "inferencex_commit": commit[:12]})
    out = pd.DataFrame(rows, columns=["id", "kv_dtype", "script", "inferencex_commit"]).sort_values("id")
    head = _git(repo, "rev-parse", "HEAD").strip()
    with OUT.open("w") as f:
        f.write(f"# KV-cache dtype of the InferenceX rows of aiconfigurator_silicon_sample.csv, read from the launch\n"
                f"# script of each row's model, precision, GPU and framework at its measurement date\n"
                f"# (SemiAnalysisAI/InferenceX clone at {head}); written by scripts/gen_silicon_kv_dtype.py.\n")
        out.to_csv(f, index=False)
    print(f"wrote {OUT} ({len(out)} rows; {out['kv_dtype'].value_counts().to_dict()})")


if __name__ == "__main__":
    main()
