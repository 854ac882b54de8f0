"""From a plan to a fleet: engine launch commands, Kubernetes manifests, a router config and a README
with the benchmark that checks the prediction. ``emit_files`` renders; ``write_tree`` writes all or
nothing."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from planner.emit.bench import bench_command, group_url, load_of
from planner.emit.engines import GroupSpec, Launch, launch, shell_line
from planner.emit.flags import k8s_accelerators
from planner.emit.k8s import dump, group_manifests, proxy_manifests, vendor_info
from planner.emit.readme import readme
from planner.emit.router import Proxy, proxy_for, router_config
from planner.errors import PlannerError
from planner.hardware import HardwareDB, get_accelerator
from planner.models import ModelDB, get_model
from planner.plan_groups import check_group, check_one_rate_plan, label_of

_KEYS = ("accelerator", "role", "tp", "pp", "ep", "dp_attn", "instances", "engine", "precision", "kv_dtype",
         "token_budget", "max_seqs", "memory_fraction", "bucket_shares")


def _spec(i: int, g: dict[str, Any]) -> GroupSpec:
    """The launch spec of group ``i``, whose fields ``check_group`` has checked."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"g{i + 1}-{g['role']}-{g['accelerator']}-tp{g['tp']}".lower()).strip("-")
    return GroupSpec(name=name[:63], accelerator=g["accelerator"], role=g["role"], tp=int(g["tp"]), pp=int(g["pp"]),
                     ep=int(g["ep"]), dp_attn=bool(g["dp_attn"]), instances=int(g["instances"]), engine=g["engine"],
                     precision=g["precision"], kv_dtype=g["kv_dtype"], token_budget=int(g["token_budget"]),
                     max_seqs=int(g["max_seqs"]), memory_fraction=float(g["memory_fraction"]))


def emit_files(plan: dict[str, Any], hw: HardwareDB | None = None, models: ModelDB | None = None) -> dict[str, str]:
    """Every file of the fleet, by path relative to the output folder."""
    check_one_rate_plan(plan, "emit")
    for key in ("model", "groups", "routing", "buckets", "slo"):
        if key not in plan:
            raise PlannerError(f"plan: missing {key!r}; expected the JSON of `planner plan --json`")
    if not plan["groups"]:
        raise PlannerError("plan: no groups to deploy (status " + str(plan.get("status")) + ")")
    model = get_model(plan["model"], models)
    fleet = re.sub(r"[^a-z0-9-]+", "-", str(plan.get("scenario") or model.id).lower()).strip("-")[:40] or "fleet"
    hf = model.hf_repo or model.id
    files: dict[str, str] = {}
    groups: list[tuple[GroupSpec, Launch, dict[str, Any]]] = []
    notes: list[str] = []
    max_per_node = int(k8s_accelerators()["max_gpus_per_node"])
    if not isinstance(plan["groups"], list):
        raise PlannerError("plan: groups: expected a list of groups; expected the JSON of `planner plan --json`")
    for i, raw in enumerate(plan["groups"]):
        g = check_group(i, raw, _KEYS)
        spec = _spec(i, g)
        acc = get_accelerator(spec.accelerator, hw)
        la = launch(spec, model, acc, max_per_node)
        groups.append((spec, la, g))
        notes += la.notes
        script = "#!/bin/sh\n# " + label_of(g) + f" x{spec.instances}: run on each instance\nexec " + \
            shell_line(la.argv) + "\n"
        files[f"launch/{spec.name}.sh"] = script
        for fname, text in la.files.items():
            files[f"launch/{fname}"] = text
        files[f"k8s/10-{spec.name}.yaml"] = dump(group_manifests(spec, la, acc.vendor, fleet))
    labels = {label_of(g): spec.name for spec, _, g in groups}
    by_name = {spec.name: (spec, la) for spec, la, _ in groups}
    proxies: dict[str, Proxy] = {}
    seen: dict[tuple[tuple[str, ...], tuple[str, ...]], Proxy] = {}
    for r in plan["routing"]:
        roles = {name: by_name[labels[lab]] for lab in r["shares"] if (name := labels.get(lab))}
        pre = [v for v in roles.values() if v[0].role == "prefill"]
        dec = [v for v in roles.values() if v[0].role == "decode"]
        if pre and dec:
            pools = (tuple(sorted(g.name for g, _ in pre)), tuple(sorted(g.name for g, _ in dec)))
            if pools in seen:  # ranges served by the same pools share one proxy
                proxies[r["isl"]] = seen[pools]
                continue
            px = proxy_for(len(seen) + 1, pre[0][0].engine, pre, dec)
            proxies[r["isl"]] = seen[pools] = px
            if px.argv:
                vendor = get_accelerator(pre[0][0].accelerator, hw).vendor
                _, image = vendor_info(vendor, px.engine)
                files[f"k8s/20-{px.name}.yaml"] = dump(proxy_manifests(px.name, image, px.argv, 8000, px.files,
                                                                       fleet))
                files[f"launch/{px.name}.sh"] = "#!/bin/sh\nexec " + shell_line(px.argv) + "\n"
                for fname, text in px.files.items():
                    files[f"launch/{fname}"] = text
            else:
                notes.append(f"{px.name}: vLLM has no prefill/decode proxy command; put a proxy that sends each "
                             f"request to a prefill pool ({', '.join(px.prefill)}) and then a decode pool "
                             f"({', '.join(px.decode)}), as the NixlConnector guide's proxy does")
    import yaml

    files["router.yaml"] = yaml.safe_dump(router_config(plan, [(s, la) for s, la, _ in groups], labels, proxies),
                                          sort_keys=False)
    bench = []
    for spec, la, g in groups:
        if spec.role != "colocated":
            continue
        load = load_of(plan, g["bucket_shares"])
        if load.rate_rps > 0:
            bench.append((spec, load, bench_command(plan, spec, group_url(spec, la), load, hf,
                                                    f"bench/{spec.name}.json")))
    files["README.md"] = readme(plan, hf, [(s, la, load_of(plan, g["bucket_shares"])) for s, la, g in groups],
                                proxies, bench, notes)
    return files


def write_tree(files: dict[str, str], out_dir: Path, inputs: tuple[Path, ...] = ()) -> list[Path]:
    """Write ``files`` under ``out_dir`` all at once: built in a temporary folder beside it, then renamed
    into place. ``out_dir`` must not exist or be empty, so nothing (no input file) is overwritten."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, inputs)
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    _write(files, out_dir, tmp)
    return sorted(out_dir / rel for rel in files)


def check_out_dir(out_dir: Path, inputs: tuple[Path, ...] = ()) -> None:
    """Raise unless ``out_dir`` can be created (absent or empty, its parent a folder, no input inside)."""
    out_dir = Path(out_dir)
    for p in inputs:
        if p is not None and out_dir.resolve() in (Path(p).resolve(), *Path(p).resolve().parents):
            raise PlannerError(f"{out_dir}: holds the input {p}; choose another folder")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise PlannerError(f"{out_dir}: exists and is not an empty folder; choose a new folder (nothing is "
                           "overwritten)")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise PlannerError(f"{out_dir}: folder {parent} does not exist")


def _write(files: dict[str, str], out_dir: Path, tmp: Path) -> None:
    try:
        for rel, text in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            if rel.endswith(".sh"):
                p.chmod(0o755)
        tmp.chmod(0o755)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PlannerError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
