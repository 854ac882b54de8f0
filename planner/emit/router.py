"""The traffic split: a prompt-length router config with the plan's shares per input-length range,
and per range that goes to prefill/decode pools, the engine's own prefill/decode proxy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from planner.emit.engines import CONFIG_DIR, GroupSpec, Launch
from planner.emit.flags import engine_flags

PROXY_PORT = 8000


@dataclass(frozen=True)
class Proxy:
    """A prefill/decode proxy for one input-length range: argv, config files, the groups behind it."""

    name: str
    engine: str
    argv: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)
    prefill: tuple[str, ...] = ()
    decode: tuple[str, ...] = ()


def _url(g: GroupSpec, launch: Launch) -> str:
    return f"http://{g.name}:{launch.port}"


def proxy_for(index: int, engine: str, prefill: list[tuple[GroupSpec, Launch]],
              decode: list[tuple[GroupSpec, Launch]]) -> Proxy:
    """SGLang: ``sglang_router.launch_router --pd-disaggregation``; TensorRT-LLM: ``trtllm-serve
    disaggregated -c`` with context and generation servers; vLLM ships no proxy command, so its pools
    are listed for the router of your choice (the NixlConnector guide's proxy)."""
    name = f"pd-proxy-{index}"
    pre, dec = tuple(g.name for g, _ in prefill), tuple(g.name for g, _ in decode)
    if engine == "sglang":
        r = engine_flags("sglang").raw["router"]
        argv = [*r["command"], "--pd-disaggregation"]
        for g, la in prefill:
            argv += ["--prefill", _url(g, la)]
        for g, la in decode:
            argv += ["--decode", _url(g, la)]
        argv += ["--host", "0.0.0.0", "--port", str(PROXY_PORT)]
        return Proxy(name, engine, tuple(argv), {}, pre, dec)
    if engine == "trtllm":
        cfg = {"hostname": "0.0.0.0", "port": PROXY_PORT, "backend": "pytorch",
               "context_servers": {"num_instances": len(prefill), "urls": [f"{g.name}:{la.port}" for g, la in prefill]},
               "generation_servers": {"num_instances": len(decode),
                                      "urls": [f"{g.name}:{la.port}" for g, la in decode]}}
        fname = f"{name}-disagg.yaml"
        return Proxy(name, engine, ("trtllm-serve", "disaggregated", "-c", f"{CONFIG_DIR}/{fname}"),
                     {fname: yaml.safe_dump(cfg, sort_keys=False)}, pre, dec)
    return Proxy(name, engine, (), {}, pre, dec)


def router_config(plan: dict[str, Any], groups: list[tuple[GroupSpec, Launch]], labels: dict[str, str],
                  proxies: dict[str, Proxy]) -> dict[str, Any]:
    """Per input-length range (prompt tokens, inclusive): the share of requests per target. Colocated
    groups are targets themselves; a range's prefill/decode share goes to its proxy, with the plan's
    split across the pools behind it."""
    by_name = {g.name: (g, la) for g, la in groups}
    routes = []
    for r in plan["routing"]:
        lo, hi = (int(x) for x in r["isl"].split("-"))
        targets, pd_share, pools = [], 0.0, []
        for label, share in r["shares"].items():
            g, la = by_name[labels[label]]
            if g.role == "colocated":
                targets.append({"target": g.name, "url": _url(g, la), "share": round(share, 4)})
            else:
                pools.append({"group": g.name, "role": g.role, "share_of_range": round(share, 4)})
                pd_share += share if g.role == "prefill" else 0.0
        if r["isl"] in proxies:
            px = proxies[r["isl"]]
            url = f"http://{px.name}:{PROXY_PORT}" if px.argv else None
            targets.append({"target": px.name, "url": url, "share": round(pd_share, 4), "pools": pools})
        routes.append({"isl_tokens": {"min": lo, "max": hi}, "targets": targets})
    return {"model": plan["model"], "route_by": "prompt tokens", "routes": routes,
            "note": "split each range's requests across targets by share (weighted random or round robin)"}
