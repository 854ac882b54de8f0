"""Model architectures from Hugging Face ``config.json`` files.

``ModelArch`` covers dense MHA/GQA/MQA, mixture-of-experts (routed experts, top-k,
shared experts, dense first layers) and DeepSeek's multi-head latent attention (MLA).
Parameter counts are derived from the config, not copied:

- attention (MHA/GQA): ``h·(n_q·d) + 2·h·(n_kv·d) + (n_q·d)·h``
- attention (MLA, DeepSeek-V2/V3 paper §2.1): ``h·r_q + r_q·n·(d_nope+d_rope)`` (or ``h·n·(d_nope+d_rope)``
  without q compression) ``+ h·(r_kv + d_rope) + r_kv·n·(d_nope + d_v) + n·d_v·h``
- gated FFN (SwiGLU): ``3·h·f``; plain MLP (OPT, GPT-J, Falcon): ``2·h·f``
- MoE layer: ``E·3·h·f_e + S·3·h·f_e + h·E`` (experts, shared experts, router)
- embeddings ``V·h`` (+ ``V·h`` for an untied LM head, + learned positions for OPT)

KV bytes per token (whole model, one copy): MHA/GQA ``2·L·n_kv·d·b``; MLA ``L·(r_kv + d_rope)·b``
(DeepSeek-V3 paper, §2.1.1); sliding-window layers hold at most ``window`` tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import planner.model_limits as lim
from planner._yaml import integer, load_json
from planner.errors import InputError, PlannerError
from planner.names import build_index, resolve
from planner.paths import data_dir


@dataclass(frozen=True)
class ModelArch:
    """Architecture figures of one decoder-only transformer (counts, not bytes)."""

    id: str
    name: str
    hidden: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    gated_ffn: bool = True
    learned_positions: int = 0
    max_context: int = 0
    # MoE (n_experts == 0: dense)
    n_experts: int = 0
    top_k: int = 0
    n_shared_experts: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0
    n_dense_layers: int = 0
    # MLA (kv_lora_rank == 0: not MLA)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    # sliding window attention
    sliding_window: int = 0
    n_sliding_layers: int = 0
    aliases: tuple[str, ...] = ()
    source: str = ""
    hf_repo: str = ""
    published_params: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""

    # --- kind --------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def attention(self) -> str:
        """'mla', 'mha', 'mqa' or 'gqa'."""
        if self.is_mla:
            return "mla"
        if self.n_kv_heads == self.n_heads:
            return "mha"
        return "mqa" if self.n_kv_heads == 1 else "gqa"

    @property
    def n_moe_layers(self) -> int:
        return self.n_layers - self.n_dense_layers if self.is_moe else 0

    @property
    def n_full_attn_layers(self) -> int:
        return self.n_layers - self.n_sliding_layers

    # --- parameters --------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        """Width of the concatenated query heads (n_q·d_qk)."""
        if self.is_mla:
            return self.n_heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
        return self.n_heads * self.head_dim

    @property
    def attn_out_dim(self) -> int:
        """Width of the attention output before o_proj (n_q·d_v)."""
        return self.n_heads * (self.v_head_dim if self.is_mla else self.head_dim)

    @property
    def attn_params_per_layer(self) -> int:
        h = self.hidden
        if self.is_mla:
            q = h * self.q_lora_rank + self.q_lora_rank * self.q_dim if self.q_lora_rank else h * self.q_dim
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_b = self.kv_lora_rank * self.n_heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv_a + kv_b + self.attn_out_dim * h
        kv = 2 * h * self.n_kv_heads * self.head_dim
        return h * self.q_dim + kv + self.attn_out_dim * h

    @property
    def ffn_mats(self) -> int:
        return 3 if self.gated_ffn else 2

    @property
    def dense_ffn_params(self) -> int:
        return self.ffn_mats * self.hidden * self.intermediate

    @property
    def expert_params(self) -> int:
        """Parameters of one routed expert."""
        return self.ffn_mats * self.hidden * self.moe_intermediate

    @property
    def shared_expert_params(self) -> int:
        """Parameters of the shared expert(s) of one MoE layer."""
        width = self.shared_intermediate or self.n_shared_experts * self.moe_intermediate
        return self.ffn_mats * self.hidden * width

    @property
    def embedding_params(self) -> int:
        """Token embeddings, untied LM head and learned positions."""
        emb = self.vocab * self.hidden
        head = 0 if self.tied_embeddings else self.vocab * self.hidden
        return emb + head + self.learned_positions * self.hidden

    @property
    def layer_params(self) -> int:
        """All transformer-layer parameters (attention + FFN/MoE), norms excluded."""
        attn = self.n_layers * self.attn_params_per_layer
        dense = (self.n_layers - self.n_moe_layers) * self.dense_ffn_params
        moe = self.n_moe_layers * (
            self.n_experts * self.expert_params + self.shared_expert_params + self.hidden * self.n_experts
        )
        return attn + dense + moe

    @property
    def params(self) -> int:
        """Total parameters (norm weights, 2·h per layer, included)."""
        return self.layer_params + self.embedding_params + 2 * self.hidden * self.n_layers + self.hidden

    @property
    def active_params(self) -> int:
        """Parameters a token touches: routed experts count top-k of E."""
        if not self.is_moe:
            return self.params
        idle = self.n_moe_layers * (self.n_experts - self.top_k) * self.expert_params
        return self.params - idle

    @property
    def routed_expert_params(self) -> int:
        """Parameters of all routed experts (what EP shards and MoE decode reads in part)."""
        return self.n_moe_layers * self.n_experts * self.expert_params

    # --- KV cache ----------------------------------------------------------------------
    @property
    def kv_elems_per_token_per_layer(self) -> int:
        """Cached elements per token per layer: 2·n_kv·d (K and V), or r_kv + d_rope for MLA."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.n_kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_bytes: float, context: int | None = None) -> float:
        """KV bytes per token of the whole model (one copy). With ``context`` given, sliding-window
        layers count ``min(context, window)/context`` of a token."""
        full = self.n_full_attn_layers
        sliding = self.n_sliding_layers
        frac = 1.0
        if sliding and context:
            frac = min(context, self.sliding_window) / context
        return self.kv_elems_per_token_per_layer * kv_bytes * (full + sliding * frac)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "aliases": list(self.aliases),
            "hf_repo": self.hf_repo,
            "params": self.params,
            "active_params": self.active_params,
            "attention": self.attention,
            "moe": self.is_moe,
            "layers": self.n_layers,
            "hidden": self.hidden,
            "heads": self.n_heads,
            "kv_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "intermediate": self.intermediate,
            "vocab": self.vocab,
            "experts": self.n_experts,
            "top_k": self.top_k,
            "shared_experts": self.n_shared_experts,
            "kv_lora_rank": self.kv_lora_rank,
            "max_context": self.max_context,
            "kv_bytes_per_token_bf16": self.kv_bytes_per_token(2.0),
            "published_params": dict(self.published_params),
            "source": self.source,
        }


def _first(cfg: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def _present(cfg: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """The first of ``keys`` that ``cfg`` sets (the name an error message should use)."""
    return next((k for k in keys if cfg.get(k) is not None), keys[0])


def parse_config(cfg: Any, where: str) -> ModelArch:
    """Build a ``ModelArch`` from a parsed HF config.json (plus our optional ``_planner`` block)."""
    if not isinstance(cfg, dict):
        raise PlannerError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    if "text_config" in cfg and isinstance(cfg["text_config"], dict) and "hidden_size" not in cfg:
        cfg = {**cfg["text_config"], "_planner": cfg.get("_planner", {})}
    meta = cfg.get("_planner") or {}
    if not isinstance(meta, dict):
        raise InputError("_planner", "a mapping with id, name, aliases, source", meta, where=where)
    model_type = str(cfg.get("model_type", ""))

    def need(maximum: int, *keys: str) -> int:
        """A required integer in 1..maximum, under the first of ``keys`` present."""
        val = _first(cfg, *keys)
        if val is None:
            raise InputError(keys[0], "an integer (required field is missing)", where=where)
        return integer(val, _present(cfg, keys), where, maximum=maximum)

    hidden = need(lim.MAX_HIDDEN, "hidden_size", "n_embd", "d_model")
    n_layers = need(lim.MAX_LAYERS, "num_hidden_layers", "n_layer", "num_layers")
    n_heads = need(lim.MAX_HEADS, "num_attention_heads", "n_head")
    vocab = need(lim.MAX_VOCAB, "vocab_size")
    if cfg.get("multi_query") and not cfg.get("new_decoder_architecture"):
        n_kv = 1
    else:
        n_kv = integer(_first(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv", default=n_heads),
                       "num_key_value_heads", where, maximum=n_heads)
    if n_heads % n_kv:
        raise InputError("num_key_value_heads", f"a divisor of num_attention_heads={n_heads}", n_kv, where=where)
    if _first(cfg, "head_dim") is None and n_heads > hidden:
        raise InputError("num_attention_heads", f"at most hidden_size={hidden} (or give head_dim)", n_heads,
                         where=where)
    head_dim = integer(_first(cfg, "head_dim", default=hidden // n_heads), "head_dim", where, maximum=lim.MAX_HEAD_DIM)
    intermediate = integer(_first(cfg, "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size",
                                  default=4 * hidden), "intermediate_size", where, maximum=lim.MAX_WIDTH)
    gated = model_type not in lim._PLAIN_MLP
    tied_raw = cfg.get("tie_word_embeddings", model_type not in lim._UNTIED_DEFAULT)
    if not isinstance(tied_raw, bool):
        raise InputError("tie_word_embeddings", "true or false", tied_raw, where=where)
    tied = tied_raw
    learned_pos = 0
    if model_type == "opt":  # OPT offsets positions by 2
        learned_pos = integer(cfg.get("max_position_embeddings", 2048), "max_position_embeddings", where,
                              maximum=lim.MAX_CONTEXT) + 2

    def opt(*keys: str, default: int = 0, minimum: int = 0, maximum: int = lim.MAX_WIDTH) -> int:
        """An optional integer field in minimum..maximum: absent or null gives ``default``."""
        val = _first(cfg, *keys)
        return default if val is None else integer(val, _present(cfg, keys), where, minimum=minimum, maximum=maximum)

    max_ctx = opt("max_position_embeddings", "n_positions", "seq_length", maximum=lim.MAX_CONTEXT)

    def mla_dim(key: str) -> int:  # required: a missing MLA width would count its projections as zero
        if _first(cfg, key) is None:
            raise InputError(key, "an integer (required with kv_lora_rank, latent attention)", where=where)
        return opt(key, minimum=1, maximum=lim.MAX_RANK)

    step = cfg.get("interleave_moe_layer_step")  # Llama 4: MoE every step-th layer, dense ones of another width;
    if step not in (None, 0, 1) or cfg.get("intermediate_size_mlp") is not None:  # as all-MoE: 778 B for 400 B
        raise InputError("interleave_moe_layer_step/intermediate_size_mlp", "a model whose layers are alike (Llama "
                         "4's interleaved MoE and dense layers are not modelled)", step or "set", where=where)
    n_experts = opt("n_routed_experts", "num_local_experts", "num_experts", maximum=lim.MAX_EXPERTS)
    top_k = opt("num_experts_per_tok", "experts_per_token", "moe_top_k", maximum=lim.MAX_EXPERTS)
    moe_inter = 0
    n_shared = 0
    shared_inter = 0
    n_dense = 0
    if n_experts:
        if top_k < 1 or top_k > n_experts:
            raise InputError("num_experts_per_tok", f"an integer in 1..{n_experts}", top_k, where=where)
        moe_inter = opt("moe_intermediate_size", default=intermediate, minimum=1)
        n_shared = opt("n_shared_experts", maximum=lim.MAX_EXPERTS)
        shared_inter = opt("shared_expert_intermediate_size")
        if shared_inter and not n_shared:
            n_shared = 1
        n_dense = opt("first_k_dense_replace", maximum=lim.MAX_LAYERS)
        mlp_only = cfg.get("mlp_only_layers") or []
        step = opt("decoder_sparse_step", "moe_layer_freq", default=1, minimum=1, maximum=lim.MAX_LAYERS)
        if isinstance(mlp_only, list) and mlp_only:
            n_dense += len(mlp_only)
        elif step > 1:
            n_dense += n_layers - n_layers // step
        if n_dense >= n_layers:
            raise InputError("first_k_dense_replace", f"fewer dense layers than the model's {n_layers} layers",
                             n_dense, where=where)

    kv_lora = opt("kv_lora_rank", maximum=lim.MAX_RANK)
    sliding = 0
    n_sliding = 0
    window = opt("sliding_window", maximum=lim.MAX_CONTEXT)
    if window and cfg.get("use_sliding_window", True) is not False:
        layer_types = cfg.get("layer_types")
        if isinstance(layer_types, list) and layer_types:
            n_sliding = sum(1 for t in layer_types if "sliding" in str(t))
        elif model_type in ("mistral", "mixtral"):
            n_sliding = n_layers
        elif model_type in ("gemma2", "gemma3"):  # local and global attention alternate
            n_sliding = n_layers // 2
        sliding = window if n_sliding else 0

    aliases = meta.get("aliases") or []
    if not isinstance(aliases, list) or len(aliases) > 64 or not all(isinstance(a, str) and a for a in aliases):
        raise InputError("_planner.aliases", "a list of at most 64 names", aliases, where=where)
    for key in ("id", "name", "hf_repo", "source"):
        if meta.get(key) is not None and (not isinstance(meta[key], str) or len(meta[key]) > 512):
            raise InputError(f"_planner.{key}", "a string of at most 512 characters", meta[key], where=where)
    hf_repo = str(meta.get("hf_repo") or cfg.get("_name_or_path") or "")
    ident = str(meta.get("id") or Path(where).stem)
    return ModelArch(
        id=ident,
        name=str(meta.get("name") or ident),
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        tied_embeddings=tied,
        gated_ffn=gated,
        learned_positions=learned_pos,
        max_context=max_ctx,
        n_experts=n_experts,
        top_k=top_k,
        n_shared_experts=n_shared,
        moe_intermediate=moe_inter,
        shared_intermediate=shared_inter,
        n_dense_layers=n_dense,
        q_lora_rank=opt("q_lora_rank", maximum=lim.MAX_RANK) if kv_lora else 0,
        kv_lora_rank=kv_lora,
        qk_rope_head_dim=opt("qk_rope_head_dim", maximum=lim.MAX_RANK) if kv_lora else 0,
        qk_nope_head_dim=mla_dim("qk_nope_head_dim") if kv_lora else 0,
        v_head_dim=mla_dim("v_head_dim") if kv_lora else 0,
        sliding_window=sliding,
        n_sliding_layers=n_sliding,
        aliases=tuple(str(a) for a in aliases) + ((hf_repo,) if hf_repo else ()),
        source=str(meta.get("source") or where),
        hf_repo=hf_repo,
        published_params=_published(meta.get("published_params"), where),
        path=where,
    )


def _published(raw: Any, where: str) -> dict[str, Any]:
    """The optional ``_planner.published_params`` mapping."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError("_planner.published_params", "a mapping of published parameter counts", raw, where=where)
    return dict(raw)


def _is_path(name: str, p: Path) -> bool:
    """True when ``name`` names a config.json file or a folder holding one (not a database name)."""
    if name.endswith(".json"):
        return True
    try:
        return p.is_file() or p.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
        return False


def load_model_file(path: str | Path) -> ModelArch:
    """Load a config.json from disk."""
    return parse_config(load_json(Path(path), "model config"), str(path))


@dataclass(frozen=True)
class ModelDB:
    """Shipped models, looked up by id, alias or HF repo id (case-insensitive)."""

    models: tuple[ModelArch, ...]
    _index: dict[str, ModelArch] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", build_index(((m.id, m.aliases, m) for m in self.models), "model"))

    def get(self, name: str | ModelArch) -> ModelArch:
        """A name, alias, HF repo id, or a path to a local config.json."""
        if isinstance(name, ModelArch):
            return name
        if not isinstance(name, str) or not name.strip():
            raise InputError("model", "a model name or a path to a config.json", name)
        p = Path(name)
        if _is_path(name, p):
            if p.is_dir():
                p = p / "config.json"
            return load_model_file(p)
        return resolve(name, self._index, "model", [m.id for m in self.models])

    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)


def load_models(folder: str | Path | None = None) -> ModelDB:
    """Load every ``*.json`` in ``folder`` (default: the shipped ``models_db``)."""
    root = Path(folder) if folder else data_dir("models_db")
    files = sorted(root.glob("*.json"))
    if not files:
        raise PlannerError(f"model folder {root}: no .json files in it")
    return ModelDB(tuple(load_model_file(f) for f in files))


@lru_cache(maxsize=1)
def default_models() -> ModelDB:
    return load_models()


def get_model(name: str | ModelArch, db: ModelDB | None = None) -> ModelArch:
    """Resolve a model by name/alias/HF id, or load a local config.json path."""
    return (db or default_models()).get(name)
