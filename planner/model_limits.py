"""Facts about config.json files the model parser needs: which architectures lack a gated FFN or an
untied head by default, and the largest figure a real config can hold."""

from __future__ import annotations

# model_type values whose FFN is a plain two-matrix MLP (no gate).
_PLAIN_MLP = {"opt", "gptj", "gpt2", "gpt_neox", "falcon", "RefinedWeb", "RefinedWebModel", "bloom", "gpt_bigcode"}
# HF's PretrainedConfig defaults tie_word_embeddings to True; these config classes (or their
# checkpoints) do not tie when the key is absent.
_UNTIED_DEFAULT = {"llama", "mistral", "mixtral", "gptj", "qwen2", "qwen3", "qwen3_moe", "qwen2_moe",
                   "deepseek_v3", "deepseek_v2", "gpt_oss", "gpt_neox"}


# Upper bounds of config.json figures: far above any published model, low enough that a typo
# (1e12 layers, a hidden size of 2**62) fails on load instead of deep inside the arithmetic.
MAX_HIDDEN = 2**20
MAX_LAYERS = 10_000
MAX_HEADS = 65_536
MAX_HEAD_DIM = 16_384
MAX_VOCAB = 2**27
MAX_WIDTH = 2**24  # FFN / expert intermediate sizes
MAX_EXPERTS = 100_000
MAX_RANK = 65_536  # MLA ranks and head dims
MAX_CONTEXT = 2**32  # tokens (positions, sliding window)
