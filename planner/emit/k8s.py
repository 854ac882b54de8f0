"""Kubernetes manifests per group: a Deployment (or a LeaderWorkerSet where one instance spans nodes)
with replicas = instances, the vendor's device-plugin resource, a node selector, probes, a Service;
and a ConfigMap for any engine config file."""

from __future__ import annotations

from typing import Any

import yaml

from planner.emit.engines import CONFIG_DIR, GroupSpec, Launch
from planner.emit.flags import k8s_accelerators
from planner.errors import PlannerError

APP_LABEL = "app.kubernetes.io/name"
PART_LABEL = "app.kubernetes.io/part-of"


def vendor_info(vendor: str, engine: str) -> tuple[str, str]:
    """(resource name, image) for an accelerator vendor and engine."""
    data = k8s_accelerators()["vendors"]
    if vendor not in data:
        raise PlannerError(f"no Kubernetes device-plugin resource recorded for vendor {vendor}")
    image = data[vendor]["image"].get(engine)
    if image is None:
        raise PlannerError(f"engine {engine} has no container image recorded for {vendor} accelerators")
    return data[vendor]["resource"], image


def _probes(launch: Launch) -> dict[str, Any]:
    """Startup probe with room for loading weights (up to 60 min), then readiness and liveness on the
    engine's health endpoint."""
    get = {"httpGet": {"path": launch.health_path, "port": launch.port}}
    return {"startupProbe": {**get, "periodSeconds": 10, "failureThreshold": 360},
            "readinessProbe": {**get, "periodSeconds": 10, "failureThreshold": 3},
            "livenessProbe": {**get, "periodSeconds": 30, "failureThreshold": 5}}


def _container(name: str, image: str, argv: tuple[str, ...], resource: str, gpus: int, launch: Launch | None,
               config: str | None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image, "command": [argv[0]], "args": list(argv[1:]),
                         "resources": {"limits": {resource: gpus}, "requests": {resource: gpus}},
                         "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key":
                                                                                       "token", "optional": True}}}],
                         "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}
    if launch is not None:
        c["ports"] = [{"name": "http", "containerPort": launch.port}]
        c.update(_probes(launch))
    if config:
        c["volumeMounts"].append({"name": "config", "mountPath": CONFIG_DIR})
    return c


def _pod(container: dict[str, Any], selector: dict[str, str], labels: dict[str, str],
         config: str | None) -> dict[str, Any]:
    vols: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    if config:
        vols.append({"name": "config", "configMap": {"name": config}})
    return {"metadata": {"labels": labels},
            "spec": {"nodeSelector": selector, "containers": [container], "volumes": vols}}


def group_manifests(g: GroupSpec, launch: Launch, vendor: str, fleet: str) -> list[dict[str, Any]]:
    """ConfigMap (if the engine reads a file), the workload and its Service, as plain objects."""
    resource, image = vendor_info(vendor, g.engine)
    labels = {APP_LABEL: g.name, PART_LABEL: fleet, "planner.llm/role": g.role}
    selector = {k8s_accelerators()["node_label"]: g.accelerator}
    out: list[dict[str, Any]] = []
    config = f"{g.name}-config" if launch.files else None
    if config:
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": config, "labels": labels},
                    "data": dict(launch.files)})
    lead = _container("engine", image, launch.argv, resource, launch.gpus_per_node, launch, config)
    if launch.nodes == 1:
        out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": g.name, "labels": labels},
                    "spec": {"replicas": g.instances, "selector": {"matchLabels": {APP_LABEL: g.name}},
                             "template": _pod(lead, selector, labels, config)}})
    else:
        worker = _container("engine", image, launch.worker_argv or launch.argv, resource, launch.gpus_per_node,
                            None, config)
        out.append({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                    "metadata": {"name": g.name, "labels": labels},
                    "spec": {"replicas": g.instances,
                             "leaderWorkerTemplate": {"size": launch.nodes,
                                                      "leaderTemplate": _pod(lead, selector, labels, config),
                                                      "workerTemplate": _pod(worker, selector, labels, config)}}})
    svc_sel = {APP_LABEL: g.name} if launch.nodes == 1 else {APP_LABEL: g.name, "role": "leader"}
    if launch.nodes > 1:  # LeaderWorkerSet labels its leader pods; only they serve HTTP
        out[-1]["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"] = {**labels,
                                                                                           "role": "leader"}
    out.append(service(g.name, launch.port, svc_sel, labels))
    return out


def service(name: str, port: int, selector: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """A ClusterIP Service on the engine's port."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
            "spec": {"type": "ClusterIP", "selector": selector,
                     "ports": [{"name": "http", "port": port, "targetPort": port}]}}


def proxy_manifests(name: str, image: str, argv: tuple[str, ...], port: int, files: dict[str, str],
                    fleet: str) -> list[dict[str, Any]]:
    """A CPU-only Deployment and Service for a prefill/decode proxy."""
    labels = {APP_LABEL: name, PART_LABEL: fleet, "planner.llm/role": "pd-proxy"}
    out: list[dict[str, Any]] = []
    config = f"{name}-config" if files else None
    if config:
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": config, "labels": labels},
                    "data": dict(files)})
    c: dict[str, Any] = {"name": "proxy", "image": image, "command": [argv[0]], "args": list(argv[1:]),
                         "ports": [{"name": "http", "containerPort": port}],
                         "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 10},
                         "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 30},
                         "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}
    vols = []
    if config:
        c["volumeMounts"] = [{"name": "config", "mountPath": CONFIG_DIR}]
        vols = [{"name": "config", "configMap": {"name": config}}]
    out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
                "spec": {"replicas": 1, "selector": {"matchLabels": {APP_LABEL: name}},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [c], "volumes": vols}}}})
    out.append(service(name, port, {APP_LABEL: name}, labels))
    return out


class _NoAliases(yaml.SafeDumper):
    """Writes shared objects out in full (no YAML anchors), as hand-written manifests are."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(objs: list[dict[str, Any]]) -> str:
    """Objects as one multi-document YAML file."""
    return yaml.dump_all(objs, Dumper=_NoAliases, sort_keys=False)
