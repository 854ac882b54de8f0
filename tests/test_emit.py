"""`planner plan --emit` and `planner emit`: flags against the recorded engine flag lists, manifests
against the Kubernetes fields they use, vLLM parallelism against the group's GPUs, all-or-nothing writes."""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from planner.emit import emit_files, write_tree
from planner.emit.flags import engine_flags, k8s_accelerators
from planner.errors import PlannerError
from planner.multi_scenario import load_any
from planner.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]


def _one_plan(path: Path) -> bool:
    """A one-rate, one-model scenario (a fleet of models or a day schedule has no single plan to emit)."""
    sc = load_any(path)
    return isinstance(sc, Scenario) and sc.rate_profile is None


EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if _one_plan(p))
RESOURCES = {v["resource"] for v in k8s_accelerators()["vendors"].values()}
KINDS = {("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"),
         ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["planner", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, dict]:
    """Each example's plan JSON, from the installed command."""
    out = {}
    for ex in EXAMPLES:
        r = run("plan", str(ex), "--json", "-q")
        assert r.returncode == 0, r.stderr
        out[ex.stem] = json.loads(r.stdout)
    # the chat service with prefill and decode on separate pools, whatever the cheapest plan is today
    r = run("plan", str(ROOT / "examples" / "chat_nvidia.yaml"), "--disaggregation", "only", "--json", "-q")
    assert r.returncode == 0, r.stderr
    out["chat_disaggregated"] = json.loads(r.stdout)
    return out


def _variants(plans: dict[str, dict]) -> list[dict]:
    """The examples, plus their groups on SGLang and TensorRT-LLM, and an instance that spans nodes."""
    out = list(plans.values())
    chat = plans["chat_disaggregated"]
    for engine in ("sglang", "trtllm"):
        p = copy.deepcopy(chat)
        for g in p["groups"]:
            g["engine"] = engine
        out.append(p)
    from planner.emit import label_of

    big = copy.deepcopy(chat)
    before = label_of(big["groups"][0])
    big["groups"][0].update(tp=8, pp=2)  # 16 GPUs on 8-GPU nodes: a LeaderWorkerSet of 2
    after = label_of(big["groups"][0])
    big["routing"] = [{"isl": r["isl"], "shares": {(after if k == before else k): v for k, v in r["shares"].items()}}
                      for r in big["routing"]]
    for engine in ("vllm", "sglang"):
        p = copy.deepcopy(big)
        for g in p["groups"]:
            g["engine"] = engine
        out.append(p)
    return out


def _argvs(doc: dict) -> list[list[str]]:
    """Every container's command line in a manifest (inner `sh -c` lines split as a shell would)."""
    pods = []
    spec = doc.get("spec", {})
    if doc["kind"] == "Deployment":
        pods.append(spec["template"])
    elif doc["kind"] == "LeaderWorkerSet":
        pods += [spec["leaderWorkerTemplate"]["leaderTemplate"], spec["leaderWorkerTemplate"]["workerTemplate"]]
    out = []
    for pod in pods:
        for c in pod["spec"]["containers"]:
            argv = c["command"] + c["args"]
            if argv[:2] == ["sh", "-c"]:
                argv = [t for part in argv[2].split("&&") for t in shlex.split(part)]
            out.append(argv)
    return out


def _allowed() -> set[str]:
    fl = set()
    for e in ("vllm", "sglang", "trtllm"):
        data = engine_flags(e)
        fl |= set(data.flags)
    fl |= set(engine_flags("sglang").raw["router"]["flags"]) | set(engine_flags("vllm").raw["bench"]["flags"])
    return fl


def _check_flags(argv: list[str], allowed: set[str]) -> None:
    ray = {"--head", "--port=6379", "--block"} | {a for a in argv if a.startswith("--address=")}
    for tok in argv:
        if tok.startswith("-") and tok not in ray and tok != "-m":
            assert tok in allowed, f"{tok} is in no recorded flag list: {' '.join(argv)}"


def test_every_emitted_file_parses_and_every_flag_is_recorded(plans):
    allowed = _allowed()
    for plan in _variants(plans):
        files = emit_files(plan)
        assert "README.md" in files and "router.yaml" in files
        assert any(k.startswith("k8s/") for k in files) and any(k.startswith("launch/") for k in files)
        for name, text in files.items():
            if name.endswith(".yaml"):
                docs = [d for d in yaml.safe_load_all(text) if d is not None]
                assert docs, name
            if name.startswith("launch/") and name.endswith(".sh"):
                line = text.strip().splitlines()[-1]
                assert line.startswith("exec ")
                argv = shlex.split(line[5:])
                if argv[:2] == ["sh", "-c"]:
                    argv = [t for part in argv[2].split("&&") for t in shlex.split(part)]
                _check_flags(argv, allowed)
        for line in files["README.md"].splitlines():
            if line.startswith("vllm bench serve"):
                _check_flags(shlex.split(line), allowed)


def test_manifests_have_the_kubernetes_fields_they_use(plans):
    for plan in _variants(plans):
        files = emit_files(plan)
        groups = {g["accelerator"] + str(g["tp"]) + g["role"]: g for g in plan["groups"]}
        workloads = 0
        for name, text in files.items():
            if not name.startswith("k8s/"):
                continue
            docs = list(yaml.safe_load_all(text))
            pod_labels: dict[str, str] = {}
            for d in docs:
                assert (d["apiVersion"], d["kind"]) in KINDS, (d["apiVersion"], d["kind"])
                assert d["metadata"]["name"]
                if d["kind"] == "Deployment":
                    tmpl = d["spec"]["template"]
                    assert d["spec"]["selector"]["matchLabels"].items() <= tmpl["metadata"]["labels"].items()
                    pod_labels = tmpl["metadata"]["labels"]
                    pods = [tmpl]
                elif d["kind"] == "LeaderWorkerSet":
                    lwt = d["spec"]["leaderWorkerTemplate"]
                    assert lwt["size"] >= 2
                    pods = [lwt["leaderTemplate"], lwt["workerTemplate"]]
                    pod_labels = lwt["leaderTemplate"]["metadata"]["labels"]
                elif d["kind"] == "Service":
                    assert d["spec"]["selector"].items() <= pod_labels.items(), "Service selects no pod"
                    assert d["spec"]["ports"][0]["port"] > 0
                    continue
                else:
                    continue
                if name.startswith("k8s/10-"):
                    workloads += 1
                    role = d["metadata"]["labels"]["planner.llm/role"]
                    for pod in pods:
                        acc = pod["spec"]["nodeSelector"][k8s_accelerators()["node_label"]]
                        c = pod["spec"]["containers"][0]
                        (res, n), = c["resources"]["limits"].items()
                        assert res in RESOURCES and c["resources"]["requests"][res] == n
                        g = next(g for g in plan["groups"] if g["accelerator"] == acc and g["role"] == role
                                 and g["instances"] == d["spec"]["replicas"]
                                 and d["metadata"]["name"].endswith(f"-tp{g['tp']}"))
                        size = d["spec"]["leaderWorkerTemplate"]["size"] if d["kind"] == "LeaderWorkerSet" else 1
                        assert n * size == g["tp"] * g["pp"]
                    assert "readinessProbe" in pods[0]["spec"]["containers"][0]
                    assert "livenessProbe" in pods[0]["spec"]["containers"][0]
        assert workloads == len(groups) == len(plan["groups"])


def _flag(argv: list[str], name: str, default: int = 1) -> int:
    return int(argv[argv.index(name) + 1]) if name in argv else default


def test_vllm_tp_pp_dp_equals_the_groups_gpus(plans):
    dsv3 = copy.deepcopy(plans["deepseek_v3_h200_mi325x_ascend"])  # TP8·EP8 with data-parallel attention
    for g in dsv3["groups"]:
        g["engine"] = "vllm"
    checked = 0
    for plan in [*_variants(plans), dsv3]:
        files = emit_files(plan)
        for g in plan["groups"]:
            if g["engine"] != "vllm":
                continue
            name = [k for k in files if k.startswith("k8s/10-") and f"-{g['role']}-" in k
                    and f"-tp{g['tp']}." in k and g["accelerator"].lower() in k]
            doc = next(d for d in yaml.safe_load_all(files[name[0]]) if d["kind"] in ("Deployment", "LeaderWorkerSet"))
            argv = _argvs(doc)[0]
            gpus = _flag(argv, "--tensor-parallel-size") * _flag(argv, "--pipeline-parallel-size") * \
                _flag(argv, "--data-parallel-size")
            assert gpus == g["tp"] * g["pp"], argv
            assert argv[argv.index("--max-num-batched-tokens") + 1] == str(g["token_budget"])
            assert argv[argv.index("--max-num-seqs") + 1] == str(g["max_seqs"])
            assert float(argv[argv.index("--gpu-memory-utilization") + 1]) == g["memory_fraction"]
            assert ("--kv-transfer-config" in argv) == (g["role"] != "colocated")
            assert ("--enable-expert-parallel" in argv) == (g["ep"] > 1)
            checked += 1
    assert checked >= 8


def test_disaggregated_pairs_get_each_engines_settings(plans):
    variants = _variants(plans)
    sgl, trt = variants[len(plans)], variants[len(plans) + 1]
    files = emit_files(sgl)
    pre = next(v for k, v in files.items() if k.startswith("launch/") and "-prefill-" in k)
    assert "--disaggregation-mode prefill" in pre and "--disaggregation-transfer-backend" in pre
    proxy = [k for k in files if k.startswith("k8s/20-pd-proxy")]
    assert proxy and "--pd-disaggregation" in files[proxy[0]]
    files = emit_files(trt)
    extra = [yaml.safe_load(v) for k, v in files.items() if k.endswith("-extra-llm-api.yaml")]
    keys = set(engine_flags("trtllm").raw["yaml_keys"])
    for e in extra:
        for k, v in e.items():
            assert k in keys
            for sub in (v if isinstance(v, dict) else {}):
                assert f"{k}.{sub}" in keys
    assert any("cache_transceiver_config" in e for e in extra)
    disagg = [yaml.safe_load(v) for k, v in files.items() if k.endswith("-disagg.yaml")]
    assert disagg and set(disagg[0]) <= set(engine_flags("trtllm").raw["disagg_keys"])
    routes = yaml.safe_load(files["router.yaml"])["routes"]
    for r in routes:
        assert sum(t["share"] for t in r["targets"]) == pytest.approx(1.0, abs=1e-3)


def test_emit_command_writes_all_or_nothing(plans, tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plans["chat_nvidia"]))
    out = tmp_path / "fleet"
    r = run("emit", str(plan_file), str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "README.md").is_file() and list((out / "k8s").glob("*.yaml"))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = run("emit", str(plan_file), str(out))  # never overwrites
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    r = run("emit", str(plan_file), str(tmp_path))  # the folder holding the input
    assert r.returncode == 2 and plan_file.is_file()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run("emit", str(bad), str(tmp_path / "x"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and not (tmp_path / "x").exists()
    broken = dict(plans["chat_nvidia"], groups=[{"accelerator": "B200"}])
    with pytest.raises(PlannerError):
        write_tree(emit_files(broken), tmp_path / "y")
    assert not (tmp_path / "y").exists() and not list(tmp_path.glob(".y.*"))


def test_plan_emit_and_validate_reads_the_benchmark_back(tmp_path):
    out = tmp_path / "fleet"
    r = run("plan", str(ROOT / "examples" / "budget_capped.yaml"), "-q", "--disaggregation", "off", "--emit",
            str(out))
    assert r.returncode == 0, r.stderr
    readme = (out / "README.md").read_text()
    assert "TTFT" in readme and "kubectl apply -f k8s/" in readme
    cmd = next(line for line in readme.splitlines() if line.startswith("vllm bench serve"))
    argv = shlex.split(cmd)
    meta = dict(a.split("=", 1) for a in argv[argv.index("--metadata") + 1:])
    isl, osl = int(argv[argv.index("--random-input-len") + 1]), int(argv[argv.index("--random-output-len") + 1])
    rate = float(argv[argv.index("--request-rate") + 1])
    result = {**meta, "request_rate": rate, "completed": 1000, "total_input_tokens": 1000 * isl,
              "total_output_tokens": 1000 * osl, "output_throughput": rate * osl, "p99_ttft_ms": 400.0,
              "p99_tpot_ms": 30.0, "mean_ttft_ms": 200.0, "mean_tpot_ms": 25.0}
    res = tmp_path / "bench.json"
    res.write_text(json.dumps(result))
    r = run("validate", str(res), "--json")
    assert r.returncode in (0, 1), r.stderr
    rows = json.loads(r.stdout)
    assert "Traceback" not in r.stderr and rows
    res.write_text(json.dumps({"completed": 3}))
    r = run("validate", str(res))
    assert r.returncode == 2 and "--metadata" in r.stderr
