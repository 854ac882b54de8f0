"""Write the hostile-input corpus under tests/hostile/: one file per case plus cases.yaml.

Each case is a file and the command line that feeds it to the console script; tests/test_hostile.py
runs them all. Placeholders in argv: {file} (the case file), {tmp} (a scratch folder per case),
{data} (tests/data). ``expect`` is a text stderr must contain (default: the file name). Rerun this
script after editing it; the generated files are committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "hostile"
GOOD: dict[str, Any] = {"model": "llama-3.1-8b", "workload": {"rate_rps": 5, "input": 512, "output": 128},
                        "slo": {"ttft_s": 1.0, "tpot_s": 0.05}, "accelerators": ["H100-SXM"]}
CASES: list[dict[str, Any]] = []


def case(name: str, content: str | bytes | None, argv: list[str], expect: str | None = None,
         exit_code: int | None = None) -> None:
    """Record one case; write its file when it has content."""
    entry: dict[str, Any] = {"name": name, "argv": argv}
    if content is not None:
        entry["file"] = name
        data = content.encode() if isinstance(content, str) else content
        (OUT / name).write_bytes(data)
    if expect is not None:
        entry["expect"] = expect
    if exit_code is not None:
        entry["exit"] = exit_code
    CASES.append(entry)


def doc(**changes: Any) -> str:
    """GOOD with dotted-path changes (value None deletes the key), as YAML."""
    d = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        keys = path.split("__")
        node = d
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return yaml.safe_dump(d, sort_keys=False)


def billion_laughs(key: str = "name", levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for n in "bcdefghijk"[: levels - 1]:
        lines.append(f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = n
    return "\n".join(lines) + f"\n{key}: *{prev}\n"


PLAN = ["plan", "{file}", "--quiet"]


def scenarios() -> None:
    good = yaml.safe_dump(GOOD, sort_keys=False)
    case("scn_billion_laughs.yaml", billion_laughs(), PLAN, "alias")
    case("scn_billion_laughs_model.yaml", billion_laughs("model", 8) + doc(model=None), PLAN, "alias")
    case("scn_billion_laughs_mapping.yaml",
         "a: &a {x: 1, y: 1, z: 1, w: 1, v: 1, u: 1, t: 1, s: 1, r: 1, q: 1}\n"
         + "".join(f"{c}: &{c} {{" + ", ".join(f"k{i}: *{p}" for i in range(10)) + "}\n"
                   for p, c in zip("abcdefg", "bcdefgh")) + "name: *h\n", PLAN, "alias")
    case("scn_recursive_alias.yaml", "model: &m [1, *m]\n", PLAN, "recursive alias")
    case("scn_deep_flow_800.yaml", "model: " + "[" * 800 + "]" * 800 + "\n", PLAN, "nested deeper")
    case("scn_deep_block_200.yaml", "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n",
         PLAN, "nested deeper")
    case("scn_buckets_10000x4.yaml", doc(buckets={"isl": 10000, "osl": 4}), PLAN, "buckets.isl")
    case("scn_buckets_200x200.yaml", doc(buckets={"isl": 200, "osl": 200}), PLAN, "buckets.isl")
    case("scn_buckets_40x40.yaml", doc(buckets={"isl": 40, "osl": 40}), PLAN, "buckets")
    case("scn_spare_1e6.yaml", doc(redundancy={"spare_instances": 1000000}), PLAN, "spare_instances")
    case("scn_model_1mb_name.yaml", doc(model="m" * 1_000_000), PLAN, "unknown model")
    case("scn_model_nul_byte.yaml", good.replace("model: llama-3.1-8b", 'model: "llama\\0.json"'), PLAN, "model")
    case("scn_model_missing.yaml", doc(model=None), PLAN, "model")
    case("scn_rate_1e308.yaml", doc(workload__rate_rps=1e308), PLAN, "rate")
    case("scn_input_huge_lognormal.yaml", doc(workload__input="lognormal:mean=1e308,p99=1e309"), PLAN, "p99")
    case("scn_input_negative.yaml", doc(workload__input="-5"), PLAN, "workload.input")
    case("scn_hist_dev_zero.yaml", doc(workload__input="hist:/dev/zero"), PLAN, "/dev/zero")
    case("scn_trace_dev_zero.yaml", doc(workload={"trace": "/dev/zero"}), PLAN, "/dev/zero")
    case("scn_trace_bad_tokens.yaml", doc(workload={"trace": "trace_text_tokens.csv"}), PLAN, "trace_text_tokens.csv")
    case("scn_ttft_zero.yaml", doc(slo={"ttft_s": 0}), PLAN, "ttft")
    case("scn_accelerators_empty.yaml", doc(accelerators=[]), PLAN, "accelerators")
    case("scn_accelerators_300.yaml", doc(accelerators=[f"gpu{i}" for i in range(300)]), PLAN, "accelerators")
    case("scn_availability_1e9.yaml", doc(availability={"H100-SXM": 10**9}), PLAN, "availability")
    case("scn_prices_1e9.yaml", doc(prices={"H100-SXM": 1e9}), PLAN, "prices")
    case("scn_tp_3000.yaml", doc(parallelism={"tp": [3000]}), PLAN, "parallelism.tp")
    case("scn_time_limit_1e9.yaml", doc(solver={"time_limit_s": 1e9}), PLAN, "time_limit_s")
    case("scn_queue_pool_1e6.yaml", doc(queueing={"pool": 1000000}), PLAN, "queueing.pool")
    case("scn_duplicate_key.yaml", good + "model: llama-3.1-70b\n", PLAN, "appears twice")
    case("scn_python_tag.yaml", 'model: !!python/object/apply:os.system ["echo owned"]\n', PLAN, "malformed YAML")
    case("scn_binary_garbage.yaml", bytes(range(256)) * 4, PLAN, "UTF-8")
    case("scn_empty.yaml", "", PLAN, "empty file")
    case("scn_scalar.yaml", "hello\n", PLAN, "mapping")
    case("scn_multi_document.yaml", good + "---\n" + good, PLAN, "malformed YAML")
    case("scn_unknown_long_key.yaml", good + "k" * 1000 + ": 1\n", PLAN, "unknown key")


def tomls() -> None:
    base = ('model = "llama-3.1-8b"\naccelerators = ["H100-SXM"]\n[workload]\nrate_rps = 5\ninput = "512"\n'
            'output = "128"\n[slo]\nttft_s = 1.0\ntpot_s = 0.05\n')
    case("toml_malformed.toml", 'model = [\n', PLAN, "malformed TOML")
    case("toml_deep_arrays.toml", "model = " + "[" * 800 + "]" * 800 + "\n", PLAN, "nested deeper")
    case("toml_deep_tables.toml", "model = " + "{a = " * 300 + "1" + "}" * 300 + "\n", PLAN, "toml_deep_tables")
    case("toml_buckets.toml", base + "[buckets]\nisl = 10000\nosl = 4\n", PLAN, "buckets.isl")
    case("toml_spare.toml", base + "[redundancy]\nspare_instances = 1000000\n", PLAN, "spare_instances")
    case("toml_rate_datetime.toml", base.replace("rate_rps = 5", "rate_rps = 1979-05-27T07:32:00Z"), PLAN,
         "rate_rps")


HW = ["--hardware-path", "{file}", "hardware", "list", "--json"]


def hardware() -> None:
    src = ROOT / "hardware_db" / "h100-sxm.yaml"
    raw = yaml.safe_load(src.read_text())
    raw.update(id="Hostile-GPU", aliases=["hostile-gpu"])

    def hw(name: str, expect: str, text: str | None = None, **changes: Any) -> None:
        d = json.loads(json.dumps(raw))
        for path, value in changes.items():
            keys = path.split("__")
            node = d
            for k in keys[:-1]:
                node = node[k]
            if value is None:
                node.pop(keys[-1], None)
            else:
                node[keys[-1]] = value
        case(name, text if text is not None else yaml.safe_dump(d, sort_keys=False), HW, expect)

    hw("hw_memory_1e308.yaml", "memory_gib", memory_gib=1e308)
    hw("hw_bw_1e6.yaml", "mem_bw_tb_per_s", mem_bw_tb_per_s=1e6)
    hw("hw_peak_1e30.yaml", "peak_tflops_dense.bf16", peak_tflops_dense__bf16=1e30)
    hw("hw_peak_unknown_dtype.yaml", "peak_tflops_dense.fp7", peak_tflops_dense__fp7=100)
    hw("hw_peak_empty.yaml", "peak_tflops_dense", peak_tflops_dense={})
    hw("hw_domain_1e9.yaml", "scaleup.domain_size", scaleup__domain_size=10**9)
    hw("hw_scaleout_inf.yaml", "scaleout_bw_gb_per_s", text=yaml.safe_dump(raw).replace(
        f"scaleout_bw_gb_per_s: {raw['scaleout_bw_gb_per_s']}", "scaleout_bw_gb_per_s: .inf"))
    hw("hw_price_zero.yaml", "price.usd_per_gpu_hour", price__usd_per_gpu_hour=0)
    hw("hw_price_1e9.yaml", "price.usd_per_gpu_hour", price__usd_per_gpu_hour=1e9)
    hw("hw_missing_sources.yaml", "sources", sources=None)
    hw("hw_id_long.yaml", "id", id="G" * 10000)
    hw("hw_alias_claims_shipped.yaml", "claimed by both", aliases=["H100-PCIe"])
    hw("hw_vendor_unknown.yaml", "vendor", vendor="Acme")
    hw("hw_unknown_field.yaml", "memry_gib", memry_gib=80)
    hw("hw_billion_laughs.yaml", "alias", text=billion_laughs("notes"))
    hw("hw_deep.yaml", "nested deeper", text="notes: " + "[" * 900 + "]" * 900 + "\n")


MODEL = ["models", "show", "{file}", "--json"]


def models() -> None:
    src = ROOT / "models_db"
    raw = json.loads(next(p for p in sorted(src.glob("*.json")) if "llama-3.1-8b" in p.name).read_text())

    def cfg(name: str, expect: str, text: str | None = None, argv: list[str] | None = None, **changes: Any) -> None:
        d = dict(raw)
        for k, v in changes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        case(name, text if text is not None else json.dumps(d, indent=1), argv or MODEL, expect)

    cfg("cfg_deep_800.json", "nested deeper", text="[" * 800 + "]" * 800)
    cfg("cfg_deep_100000.json", "nested deeper", text='{"a":' * 100000 + "1" + "}" * 100000)
    cfg("cfg_layers_1e12.json", "num_hidden_layers", num_hidden_layers=10**12)
    cfg("cfg_hidden_nan.json", "hidden_size", text=json.dumps(raw).replace(
        f'"hidden_size": {raw["hidden_size"]}', '"hidden_size": NaN'))
    cfg("cfg_kv_not_divisor.json", "num_key_value_heads", num_key_value_heads=5)
    cfg("cfg_vocab_1e15.json", "vocab_size", vocab_size=10**15)
    cfg("cfg_experts_1e9.json", "num_local_experts", num_local_experts=10**9, num_experts_per_tok=2)
    cfg("cfg_topk_above_experts.json", "num_experts_per_tok", num_local_experts=8, num_experts_per_tok=9)
    cfg("cfg_context_1e30.json", "max_position_embeddings", max_position_embeddings=1e30)
    cfg("cfg_intermediate_1e12.json", "intermediate_size", intermediate_size=10**12)
    cfg("cfg_tie_yes.json", "tie_word_embeddings", tie_word_embeddings="yes")
    cfg("cfg_planner_text.json", "_planner", _planner="oops")
    cfg("cfg_heads_above_hidden.json", "num_attention_heads", num_attention_heads=8192, head_dim=None,
        num_key_value_heads=8192)
    cfg("cfg_dense_layers_all.json", "first_k_dense_replace", num_local_experts=8, num_experts_per_tok=2,
        first_k_dense_replace=10**6)
    cfg("cfg_truncated.json", "malformed JSON", text=json.dumps(raw)[:50])
    cfg("cfg_memory_layers_1e12.json", "num_hidden_layers", num_hidden_layers=10**12,
        argv=["memory", "--model", "{file}", "--gpu", "H100-SXM", "--json"])


def measured() -> None:
    ml = (ROOT / "tests" / "data" / "calibration" / "mlperf_llm_all.csv").read_text().splitlines()
    header = ml[0].split(",")
    ai = (ROOT / "tests" / "data" / "calibration" / "aiconfigurator_silicon_sample.csv").read_text().splitlines()
    ai_head = ai[0].split(",")

    def drop_column(lines: list[str], col: str) -> str:
        import csv
        import io

        rows = list(csv.reader(io.StringIO("\n".join(lines[:6]))))
        i = rows[0].index(col)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([r[:i] + r[i + 1:] for r in rows])
        return buf.getvalue()

    def set_cell(lines: list[str], head: list[str], col: str, value: str) -> str:
        import csv
        import io

        rows = list(csv.reader(io.StringIO("\n".join(lines[:6]))))
        i = head.index(col)
        for r in rows[1:]:
            r[i] = value
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue()

    val = ["validate", "{file}", "--quiet"]
    cal = ["calibrate", "{file}", "-o", "{tmp}/out.yaml", "--quiet"]
    case("meas_mlperf_no_result_valid.csv", drop_column(ml, "result_valid"), val, "result_valid")
    case("meas_mlperf_text_accel_count.csv", set_cell(ml, header, "accel_count", "eight"), val, "accel_count")
    case("meas_mlperf_negative_tps.csv", set_cell(ml, header, "tokens_per_s_per_accel", "-5"), val,
         "tokens_per_s_per_accel")
    case("meas_aic_text_tp_size.csv", set_cell(ai, ai_head, "tp_size", "four"), val, "tp_size")
    case("meas_aic_text_tp_size_calibrate.csv", set_cell(ai, ai_head, "tp_size", "four"), cal, "tp_size")
    case("meas_aic_huge_isl.csv", set_cell(ai, ai_head, "isl", "1e300"), val, "isl")
    ours = "model,accelerator,engine,isl,osl,tp,output_tokens_per_s\n"
    case("meas_ours_missing_model.csv", "accelerator,engine,isl,osl,tpot_s\nH100-SXM,vllm,1,1,0.1\n", val, "model")
    case("meas_ours_all_text.csv", ours + "llama-3.1-8b,H100-SXM,vllm,lots,128,1,100\n", [*val, "--json"],
         "no row")
    case("meas_ours_no_metric.csv", "model,accelerator,engine,isl,osl\nllama-3.1-8b,H100-SXM,vllm,512,128\n",
         val, "output_tokens_per_s")
    case("meas_empty.csv", "", val, "meas_empty.csv")
    case("meas_binary.csv", bytes(range(256)) * 8, val, "meas_binary.csv")
    case("meas_junit_is_input.xml", ours + "llama-3.1-8b,H100-SXM,vllm,512,128,1,1000\n",
         ["validate", "{file}", "--junit", "{file}", "--quiet"], "--junit")
    case("meas_calibrate_output_is_input.yaml", ours + "llama-3.1-8b,H100-SXM,vllm,512,128,1,1000\n",
         ["calibrate", "{file}", "-o", "{file}", "--quiet"], "--output")


def sheets() -> None:
    head = "name,model,rate_rps,input,output,ttft_s,tpot_s,accelerators\n"
    row = "a,llama-3.1-8b,2,512,128,1.5,0.05,H100-SXM\n"
    sheet = ["sheet", "{file}", "-o", "{tmp}/out.xlsx", "--quiet"]
    case("sheet_unknown_column.csv", head.replace("accelerators", "arrival_cvv") + row, sheet, "arrival_cvv")
    case("sheet_misspelt_objective.csv", head.replace("accelerators", "objektive") + row.replace("H100-SXM", "cost"),
         sheet, "objektive")
    case("sheet_duplicate_column.csv", head.replace("accelerators", "model") + row, sheet, "model")
    case("sheet_missing_model.csv", head.replace("model,", "") + row.replace("llama-3.1-8b,", ""), sheet, "model")
    case("sheet_empty.csv", "", sheet, "sheet_empty.csv")
    case("sheet_too_many_rows.csv", head + row * 6000, sheet, "rows")
    case("sheet_output_is_input.csv", head + row, ["sheet", "{file}", "-o", "{file}", "--quiet"], "--output")
    case("sheet_binary.csv", bytes(range(256)) * 8, sheet, "sheet_binary.csv")
    case("sheet_fake.xlsx", "this is not a workbook\n", sheet, "sheet_fake.xlsx")
    case("sheet_output_bad_suffix.csv", head + row, ["sheet", "{file}", "-o", "{tmp}/out.txt", "--quiet"],
         "--output")


def traces() -> None:
    sim = ["simulate", "-m", "llama-3.1-8b", "-g", "H100-SXM", "--workload", "{file}", "--rate", "1",
           "--requests", "50", "--quiet"]
    case("trace_text_tokens.csv", "input_tokens,output_tokens\n100,20\nmany,20\n", sim, "input_tokens")
    case("trace_negative.csv", "input_tokens,output_tokens\n100,-20\n", sim, "output_tokens")
    case("trace_huge_tokens.csv", "input_tokens,output_tokens\n1e30,20\n10,5\n", sim, "input_tokens")
    case("trace_unknown_header.csv", "foo,bar\n1,2\n", sim, "trace columns")
    case("trace_bad_timestamp.csv", "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
         "0,ChatGPT,100,20,120,Conversation log\nyesterday,ChatGPT,100,20,120,Conversation log\n", sim, "Timestamp")
    case("workload_billion_laughs.yaml", billion_laughs("input"), sim, "alias")
    case("workload_deep.yaml", "input: " + "[" * 900 + "]" * 900 + "\n", sim, "nested deeper")


def flags() -> None:
    base = ["simulate", "-m", "llama-3.1-8b", "-g", "H100-SXM", "--isl", "128", "--osl", "16", "--rate", "1",
            "--requests", "50", "--quiet"]
    case("flag_prefill_instances_1e6", None, [*base, "--prefill-instances", "1000000"], "--prefill-instances")
    case("flag_decode_instances_1e6", None, [*base, "--prefill-instances", "1", "--decode-instances", "1000000"],
         "--decode-instances")
    case("flag_model_1mb", None, ["memory", "--model", "x" * 100_000, "--gpu", "H100-SXM"], "unknown model")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.iterdir():
        if p.is_file():
            p.unlink()
    scenarios()
    tomls()
    hardware()
    models()
    measured()
    sheets()
    traces()
    flags()
    head = "# Generated by scripts/make_hostile_corpus.py; run by tests/test_hostile.py.\n"
    (OUT / "cases.yaml").write_text(head + yaml.safe_dump(CASES, sort_keys=False, width=200))
    print(f"{len(CASES)} cases, {sum(1 for c in CASES if 'file' in c)} files in {OUT}")


if __name__ == "__main__":
    main()
