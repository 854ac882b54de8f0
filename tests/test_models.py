"""Model database: derived parameter counts and KV bytes against published and hand-worked figures."""

from __future__ import annotations

import json

import pytest

from planner.errors import PlannerError, UnknownNameError
from planner.models import default_models, get_model, load_model_file


def test_llama31_70b_kv_bytes_hand_worked():
    # 2 (K,V) · 80 layers · 8 KV heads · 128 head dim · 2 bytes = 327,680 B/token
    m = get_model("llama-3.1-70b")
    assert m.kv_bytes_per_token(2.0) == 2 * 80 * 8 * 128 * 2 == 327_680
    assert m.attention == "gqa"


def test_deepseek_v3_mla_kv_bytes_hand_worked():
    # MLA caches the compressed latent and the decoupled RoPE key: 61 · (512 + 64) · 2 = 70,272 B/token
    m = get_model("deepseek-v3")
    assert m.attention == "mla" and m.is_moe
    assert m.kv_bytes_per_token(2.0) == 61 * (512 + 64) * 2 == 70_272


@pytest.mark.parametrize(
    "name,total,active,tol",
    [
        ("llama-2-70b", 69.0e9, None, 0.01),
        ("mixtral-8x7b", 46.7e9, 12.9e9, 0.01),
        ("mixtral-8x22b", 141e9, 39e9, 0.01),
        ("deepseek-v3", 671e9, 37e9, 0.02),
        ("qwen3-235b-a22b", 235e9, 22e9, 0.02),
        ("qwen3-30b-a3b", 30.5e9, 3.3e9, 0.02),
        ("llama-3.1-405b", 405e9, None, 0.01),
        ("llama-3.1-8b", 8.03e9, None, 0.01),
        ("gpt-j-6b", 6.05e9, None, 0.01),
        ("falcon-180b", 180e9, None, 0.015),
        ("opt-66b", 66e9, None, 0.01),
        # gpt-oss: OpenAI's 5.1B active excludes the 0.58B embedding table (a lookup, not a matmul)
        ("gpt-oss-120b", 116.8e9, 5.1e9 + 0.58e9, 0.02),
    ],
)
def test_parameter_counts_match_published(name, total, active, tol):
    m = get_model(name)
    assert m.params == pytest.approx(total, rel=tol)
    if active:
        assert m.active_params == pytest.approx(active, rel=tol)


def test_every_shipped_model_matches_its_published_total_within_3_percent():
    for m in default_models():
        pub = m.published_params.get("total")
        assert pub, f"{m.id} lacks published_params.total"
        assert m.params == pytest.approx(float(pub), rel=0.03), m.id
        assert m.source.startswith("http"), f"{m.id} lacks a source"


@pytest.mark.parametrize("alias", ["llama-3.1-70b", "meta-llama/Llama-3.1-70B-Instruct", "Llama 3.1 70B",
                                   "LLAMA_3.1_70B"])
def test_aliases_resolve_case_insensitively(alias):
    assert get_model(alias).id == "llama-3.1-70b"


def test_unknown_model_suggests_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean.*llama-3.1-70b"):
        get_model("llama-3.1-7b0")


def test_local_config_path(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = get_model(str(p))
    assert m.params == pytest.approx(8.03e9, rel=0.01)
    assert get_model(str(tmp_path)).params == m.params


def test_malformed_config_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PlannerError, match="bad.json.*malformed JSON"):
        load_model_file(bad)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    with pytest.raises(PlannerError, match="num_hidden_layers"):
        load_model_file(missing)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"hidden_size": "big", "num_hidden_layers": 2, "num_attention_heads": 2,
                                 "vocab_size": 10}))
    with pytest.raises(PlannerError, match="hidden_size: expected an integer"):
        load_model_file(wrong)
