"""Write planner/data/silicon_speculative.csv: the silicon rows that were speculative-decoding runs.

The silicon table (``aiconfigurator_silicon_sample.csv``) does not record whether a run used
speculative decoding, but its InferenceX rows name the container image and the date they were
measured. SemiAnalysis InferenceX's sweep configuration (``configs/nvidia-master.yaml``, earlier
``.github/configs/nvidia-master.yaml``) names, for every config, its image, model, precision, runner,
framework and search space (sequence lengths, TP, EP, attention DP, concurrencies, and
``spec-decoding: mtp`` on the speculative ones). A row is attributed to the configs that, in any of
the 40 configuration commits up to its measurement date, used its image for its model, precision,
GPU and framework and whose search space holds its point (lengths, TP, EP, DP attention,
concurrency). It is written here as speculative when every config it is attributed to decodes
speculatively; rows attributed to both kinds, or to none, are left as they are.

Usage (a local clone of https://github.com/SemiAnalysisAI/InferenceX, read with git; nothing is
fetched at run time and the planner never reads the clone):

    python scripts/gen_silicon_speculative.py --inferencex /path/to/InferenceX [--calibration ../shared/calibration]
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "planner" / "data" / "silicon_speculative.csv"
CONFIG_PATHS = ("configs/nvidia-master.yaml", ".github/configs/nvidia-master.yaml")
PREFIX = {"deepseek-ai/DeepSeek-R1": "dsr1", "deepseek-ai/DeepSeek-V3": "dsr1", "openai/gpt-oss-120b": "gptoss",
          "MiniMaxAI/MiniMax-M2.5": "minimaxm2.5", "meta-llama/Llama-3.1-70B": "llama70b"}
FRAMEWORK = {"trtllm": "trt", "sglang": "sglang", "vllm": "vllm"}
WINDOW = 40


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def snapshots(repo: Path) -> list[dict]:
    """Every commit of the NVIDIA sweep configuration, oldest first: date, commit, configs."""
    log = _git(repo, "log", "--format=%H %ad", "--date=short", "--", *CONFIG_PATHS).stdout.split("\n")
    snaps = []
    for line in filter(str.strip, log):
        commit, date = line.split()
        for path in CONFIG_PATHS:
            shown = _git(repo, "show", f"{commit}:{path}")
            if shown.returncode:
                continue
            try:
                doc = yaml.safe_load(shown.stdout) or {}
            except yaml.YAMLError:
                break
            snaps.append({"commit": commit, "date": date, "configs": _configs(doc)})
            break
    return sorted(snaps, key=lambda s: s["date"])


def _configs(doc: dict) -> dict[str, dict]:
    out = {}
    for name, cfg in doc.items():
        if not isinstance(cfg, dict) or "image" not in cfg:
            continue
        scen = cfg.get("scenarios")
        seqs = cfg.get("seq-len-configs") or (scen.get("fixed-seq-len") if isinstance(scen, dict) else None) or []
        points = []
        for seq in seqs:
            for sp in seq.get("search-space") or []:
                points.append({"isl": seq.get("isl"), "osl": seq.get("osl"), "tp": sp.get("tp"),
                               "ep": sp.get("ep") or 1, "dp": bool(sp.get("dp-attn", False)),
                               "lo": sp.get("conc-start"), "hi": sp.get("conc-end"), "list": sp.get("conc-list"),
                               "spec": str(sp.get("spec-decoding", "none"))})
        out[name] = {"image": str(cfg["image"]).replace("#", "/"), "precision": cfg.get("precision"),
                     "framework": str(cfg.get("framework")), "runner": str(cfg.get("runner")),
                     "prefix": cfg.get("model-prefix"), "points": points}
    return out


def _in_space(p: dict, isl: float, osl: float, tp: int, ep: int, dp: bool, conc: float) -> bool:
    if (p["isl"], p["osl"], p["tp"], p["ep"], p["dp"]) != (isl, osl, tp, ep, dp):
        return False
    if p["list"]:
        return conc in p["list"]
    lo, hi = p["lo"], p["hi"]
    if lo is None or hi is None or not lo <= conc <= hi:
        return False
    steps = math.log2(conc / lo)  # the sweep doubles from conc-start to conc-end
    return abs(steps - round(steps)) < 1e-9


def _layout(row: pd.Series) -> tuple[int, int, bool]:
    """TP, EP and DP attention as InferenceX names them (the squared world sizes of the export undone:
    planner.calib.silicon_layout)."""
    dp = row["attention_dp_size"] if row["attention_dp_size"] == row["attention_dp_size"] else 1.0
    dp = max(dp, 1.0)
    world = int(row["tp_size"] * dp)
    ep = int(row["moe_ep_size"]) if row["moe_ep_size"] == row["moe_ep_size"] and row["moe_ep_size"] > 0 else 1
    k = math.isqrt(world)
    if world > 8 and k * k == world:
        return k, k, dp > 1
    return world, ep, dp > 1


def attribute(silicon: pd.DataFrame, snaps: list[dict]) -> pd.DataFrame:
    agg = silicon[silicon["mode"] == "agg"]
    src = agg["silicon_data_source"].astype(str)
    image = src.str.extract(r"(?:image=)?((?:nvcr\.io[#/]|lmsysorg/|vllm/)[^\s;]+)")[0].str.replace("#", "/")
    date = src.str.extract(r"measured=(\d{4}-\d{2}-\d{2})")[0]
    conc = pd.to_numeric(src.str.extract(r"silicon_concurrency=(\d+)")[0], errors="coerce")
    rows = []
    for i, row in agg.iterrows():
        prefix = PREFIX.get(str(row["model_path"]))
        if prefix is None or pd.isna(image[i]) or pd.isna(date[i]) or pd.isna(conc[i]):
            continue
        tp, ep, dp = _layout(row)
        gpu = str(row["system"]).split("_")[0]
        hits = set()
        for snap in [s for s in snaps if s["date"] <= date[i]][-WINDOW:]:
            for name, cfg in snap["configs"].items():
                if (cfg["image"], cfg["prefix"], cfg["precision"]) != (image[i], prefix, row["precision"]):
                    continue
                if FRAMEWORK[str(row["backend"])] not in cfg["framework"] or gpu not in cfg["runner"]:
                    continue
                for p in cfg["points"]:
                    if _in_space(p, row["isl"], row["osl"], tp, ep, dp, conc[i]):
                        spec = p["spec"] != "none" or re.search(r"-(mtp|eagle)", name) is not None
                        hits.add((name, spec, snap["commit"][:12]))
        if hits and all(h[1] for h in hits):
            rows.append({"id": row["id"], "spec_method": "mtp",
                         "inferencex_configs": " ".join(sorted({h[0] for h in hits})),
                         "inferencex_commit": min(h[2] for h in hits)})
    return pd.DataFrame(rows, columns=["id", "spec_method", "inferencex_configs", "inferencex_commit"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inferencex", type=Path, required=True, help="a git clone of SemiAnalysisAI/InferenceX")
    ap.add_argument("--calibration", type=Path, default=ROOT.parent / "shared" / "calibration")
    args = ap.parse_args()
    silicon = pd.read_csv(args.calibration / "aiconfigurator_silicon_sample.csv")
    out = attribute(silicon, snapshots(args.inferencex)).sort_values("id")
    head = _git(args.inferencex, "rev-parse", "HEAD").stdout.strip()
    with OUT.open("w") as f:
        f.write(f"# Speculative-decoding runs in aiconfigurator_silicon_sample.csv, attributed by image, date and\n"
                f"# search space to SemiAnalysisAI/InferenceX sweep configs (clone at {head}); written by\n"
                f"# scripts/gen_silicon_speculative.py. Their acceptance is not recorded, so they are not scored.\n")
        out.to_csv(f, index=False)
    print(f"wrote {OUT} ({len(out)} rows)")


if __name__ == "__main__":
    main()
