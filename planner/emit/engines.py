"""One group's engine launch: the command line (argv) for vLLM, SGLang or TensorRT-LLM with the
parallelism, token budget, sequence cap, memory fraction, KV dtype and quantisation the prediction
assumed, and any config file the engine reads (TensorRT-LLM's extra LLM-API options YAML)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import yaml

from planner.emit.flags import EngineFlags, engine_flags
from planner.hardware import Accelerator
from planner.models import ModelArch
from planner.parallel import Parallel


@dataclass(frozen=True)
class GroupSpec:
    """What the emitter needs of one plan group (read from the plan JSON)."""

    name: str
    accelerator: str
    role: str
    tp: int
    pp: int
    ep: int
    dp_attn: bool
    instances: int
    engine: str
    precision: str
    kv_dtype: str
    token_budget: int
    max_seqs: int
    memory_fraction: float

    @property
    def gpus_per_instance(self) -> int:
        return self.tp * self.pp


@dataclass(frozen=True)
class Launch:
    """argv of the engine server on the first node; ``worker_argv`` on the other nodes of a multi-node
    instance (empty when one node holds it); ``files``: config files the command reads, by name."""

    argv: tuple[str, ...]
    port: int
    health_path: str
    nodes: int
    gpus_per_node: int
    worker_argv: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


CONFIG_DIR = "/config"
LEADER = "$(LWS_LEADER_ADDRESS)"  # LeaderWorkerSet sets this variable in every pod of a group


def _dtype_flags(fl: EngineFlags, g: GroupSpec) -> tuple[list[str], list[str]]:
    """Weight-dtype flags and notes: 16-bit as --dtype, FP8 as online quantisation; int8/int4/fp4 need a
    checkpoint already quantised (the engines read its quantisation config)."""
    args: list[str] = []
    notes: list[str] = []
    if (dt := fl.value("dtype_values", g.precision)) is not None:
        args += [fl.flag("dtype"), dt]
    elif (q := fl.value("quantization_values", g.precision)) is not None:
        args += [fl.flag("quantization"), q]
    else:
        notes.append(f"{g.name}: precision {g.precision} assumes a checkpoint already quantised to {g.precision} "
                     f"(the engine reads its quantisation config); point the model argument at one")
    return args, notes


def vllm(g: GroupSpec, model: str, nodes: int, per_node: int) -> Launch:
    """``vllm serve``: data-parallel attention as TP1 x DP ranks with expert parallelism over all of them;
    the budget and sequence cap are each rank's (``rank_caps``)."""
    fl = engine_flags("vllm")
    tp, dp = (1, g.tp) if g.dp_attn else (g.tp, 1)
    argv = [*fl.command, model, fl.flag("host"), "0.0.0.0", fl.flag("port"), str(fl.port),
            fl.flag("tp"), str(tp), fl.flag("pp"), str(g.pp)]
    if dp > 1:
        argv += [fl.flag("dp"), str(dp)]
    notes = []
    if g.ep > 1:
        argv.append(fl.flag("ep"))
        if g.ep != tp * dp:
            notes.append(f"{g.name}: vLLM shards experts over all TP x DP = {tp * dp} ranks; the plan assumed "
                         f"EP{g.ep}")
    argv += [fl.flag("token_budget"), str(g.token_budget), fl.flag("max_seqs"), str(g.max_seqs),
             fl.flag("memory_fraction"), f"{g.memory_fraction:g}", fl.flag("kv_dtype"),
             fl.value("kv_dtype_values", g.kv_dtype) or g.kv_dtype]
    dargs, dnotes = _dtype_flags(fl, g)
    argv += dargs
    if g.role in ("prefill", "decode"):
        argv += [fl.flag("kv_transfer"), json.dumps({"kv_connector": fl.raw["kv_connector"], "kv_role": "kv_both"},
                                                    separators=(",", ":"))]
    worker: tuple[str, ...] = ()
    if nodes > 1:
        argv += [fl.flag("executor"), "ray"]
        argv = ["sh", "-c", f"ray start --head --port=6379 && {' '.join(_quote(a) for a in argv)}"]
        worker = ("sh", "-c", f"ray start --address={LEADER}:6379 --block")
    return Launch(tuple(argv), fl.port, fl.health_path, nodes, per_node, worker, {}, tuple(notes + dnotes))


def rank_caps(g: GroupSpec, engine: str) -> tuple[int, int]:
    """(token budget, sequence cap) as ``engine``'s flags state them. The plan's values hold per
    data-parallel attention rank (``Deployment.seq_cap``). vLLM starts each DP rank as its own engine
    core with the flags as given, and TensorRT-LLM applies ``--max_num_tokens``/``--max_batch_size``
    per rank under ``enable_attention_dp``: both take the per-rank values. SGLang's
    ``--chunked-prefill-size`` and ``--max-running-requests`` are instance totals that it divides by
    ``--dp-size`` under ``--enable-dp-attention``: it takes dp times them."""
    dp = g.tp if g.dp_attn and engine == "sglang" else 1
    return dp * g.token_budget, dp * g.max_seqs


def sglang(g: GroupSpec, model: str, nodes: int, per_node: int) -> Launch:
    """``python -m sglang.launch_server``: --tp-size counts every GPU of the instance; DP attention adds
    --dp-size tp --enable-dp-attention (and the budget and sequence cap as instance totals, ``rank_caps``);
    disaggregated roles add --disaggregation-mode and the backend."""
    fl = engine_flags("sglang")
    argv = [*fl.command, fl.raw["model_flag"], model, fl.flag("host"), "0.0.0.0", fl.flag("port"), str(fl.port),
            fl.flag("tp"), str(g.tp)]
    if g.pp > 1:
        argv += [fl.flag("pp"), str(g.pp)]
    if g.dp_attn:
        argv += [fl.flag("dp"), str(g.tp), fl.flag("dp_attn")]
    if g.ep > 1:
        argv += [fl.flag("ep"), str(g.ep)]
    budget, seqs = rank_caps(g, "sglang")
    argv += [fl.flag("token_budget"), str(budget), fl.flag("max_seqs"), str(seqs),
             fl.flag("memory_fraction"), f"{g.memory_fraction:g}", fl.flag("kv_dtype"),
             fl.value("kv_dtype_values", g.kv_dtype) or g.kv_dtype]
    dargs, notes = _dtype_flags(fl, g)
    argv += dargs
    if g.role in ("prefill", "decode"):
        argv += [fl.flag("disaggregation_mode"), g.role, fl.flag("transfer_backend"), fl.raw["transfer_backend"]]
    worker: tuple[str, ...] = ()
    if nodes > 1:
        common = [fl.flag("nnodes"), str(nodes), fl.flag("dist_init_addr"), f"{LEADER}:20000"]
        worker = tuple(argv + common + [fl.flag("node_rank"), "$(LWS_WORKER_INDEX)"])
        argv += common + [fl.flag("node_rank"), "0"]
    return Launch(tuple(argv), fl.port, fl.health_path, nodes, per_node, worker, {}, tuple(notes))


def trtllm_free_fraction(model: ModelArch, acc: Accelerator, g: GroupSpec) -> float:
    """TensorRT-LLM sizes the KV cache as a share of the memory left after the weights; the planner's
    memory fraction is a share of all HBM for weights and KV: (f·M − W) / (M − W)."""
    from planner.deployment import precision_for
    from planner.perf.memory import weights_bytes

    w, _ = weights_bytes(model, Parallel(g.tp, g.pp, g.ep, g.dp_attn), precision_for(g.precision, g.kv_dtype))
    m = acc.memory_bytes
    return round(min(0.99, max(0.05, (g.memory_fraction * m - w) / (m - w))), 3) if m > w else 0.05


def trtllm(g: GroupSpec, model: str, nodes: int, per_node: int, free_fraction: float) -> Launch:
    """``trtllm-serve`` (PyTorch backend) and its ``--extra_llm_api_options`` YAML: attention DP, the KV
    cache dtype and share, and for disaggregated roles the KV cache transceiver; the budget and sequence
    cap are each rank's (``rank_caps``)."""
    fl = engine_flags("trtllm")
    extra: dict[str, object] = {"kv_cache_config": {"dtype": fl.value("kv_dtype_values", g.kv_dtype) or g.kv_dtype,
                                                    "free_gpu_memory_fraction": free_fraction}}
    if g.dp_attn:
        extra["enable_attention_dp"] = True
    if g.role in ("prefill", "decode"):
        extra["cache_transceiver_config"] = {"backend": fl.raw["transfer_backend"],
                                             "max_tokens_in_buffer": g.token_budget}
    if g.role == "prefill":
        extra["disable_overlap_scheduler"] = True
    fname = f"{g.name}-extra-llm-api.yaml"
    argv = [*fl.command, model, fl.flag("backend"), "pytorch", fl.flag("host"), "0.0.0.0", fl.flag("port"),
            str(fl.port), fl.flag("tp"), str(g.tp), fl.flag("pp"), str(g.pp)]
    if g.ep > 1:
        argv += [fl.flag("ep"), str(g.ep)]
    argv += [fl.flag("token_budget"), str(g.token_budget), fl.flag("max_seqs"), str(g.max_seqs),
             fl.flag("memory_fraction"), f"{free_fraction:g}", fl.flag("extra_options"), f"{CONFIG_DIR}/{fname}"]
    notes = [f"{g.name}: TensorRT-LLM's KV share is of the memory left after weights: {free_fraction:g} stands for "
             f"the plan's {g.memory_fraction:g} of all HBM"]
    if g.precision not in ("bf16", "fp16"):
        notes.append(f"{g.name}: TensorRT-LLM reads the {g.precision} quantisation from the checkpoint; serve a "
                     f"ModelOpt-quantised {g.precision} checkpoint")
    if nodes > 1:
        notes.append(f"{g.name}: one instance spans {nodes} nodes; start trtllm-serve under MPI across the "
                     f"LeaderWorkerSet pods (trtllm-llmapi-launch) as the TensorRT-LLM multi-node guide shows")
    return Launch(tuple(argv), fl.port, fl.health_path, nodes, per_node, (), {fname: yaml.safe_dump(extra)},
                  tuple(notes))


def _quote(arg: str) -> str:
    """Shell-quote an argument unless it is plain."""
    import shlex

    return arg if arg.replace("-", "").replace(".", "").replace("/", "").replace("_", "").isalnum() \
        else shlex.quote(arg)


def shell_line(argv: tuple[str, ...]) -> str:
    """The command as one shell line (for scripts and the README)."""
    return " ".join(_quote(a) for a in argv)


def launch(g: GroupSpec, model: ModelArch, acc: Accelerator, max_per_node: int) -> Launch:
    """The engine launch of ``g``: nodes = ⌈GPUs per instance / GPUs per node⌉, where a node holds at most
    the scale-up domain (and at most ``max_per_node``)."""
    per_node = min(acc.scaleup_domain, max_per_node)
    nodes = -(-g.gpus_per_instance // per_node)
    per_node = g.gpus_per_instance if nodes == 1 else per_node
    hf = model.hf_repo or model.id
    if g.engine == "vllm":
        return vllm(g, hf, nodes, per_node)
    if g.engine == "sglang":
        return sglang(g, hf, nodes, per_node)
    if g.engine == "trtllm":
        return trtllm(g, hf, nodes, per_node, trtllm_free_fraction(model, acc, g))
    engine_flags(g.engine)  # raises the one-line error naming the engines with data
    raise AssertionError("unreachable")
