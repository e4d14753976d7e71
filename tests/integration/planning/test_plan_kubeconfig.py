"""``xpushare plan --kubeconfig`` against the embedded API server: the plan is read from a live server
through the official client (slices, classes, allocated claims, nodes, pods, and a template the workload
file only names), and then the replicas are created there and placed by the scheduler stand-in, which must
place as many and leave every device as used as the plan said."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controller.deviceclasses import device_classes
from dra_driver.cli import main
from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.scheduler import SimScheduler
from tests.support.plan_cluster import (
    DRIVER,
    GPU,
    Usage,
    add_usage,
    claim_spec,
    deployment,
    gpu,
    node_object,
    node_slices,
    npu,
    planned_usage,
    pod_spec,
    request,
    template,
)

JSON = dict[str, Any]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[client.ApiClient, Path]]:
    with ApiServer() as server, server.client() as api:
        yield api, server.write_kubeconfig(tmp_path / "kubeconfig")


def pod(name: str, template_name: str) -> JSON:
    spec = pod_spec({"xpu": template_name})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def pod_node(core: client.CoreV1Api, name: str) -> str:
    found: JSON = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, "default"))
    return str(found["spec"].get("nodeName") or "")


def used_per_device(resource: client.ResourceV1Api, api: client.ApiClient) -> Usage:
    used: Usage = {}
    slices = [api.sanitize_for_serialization(s) for s in resource.list_resource_slice().items]  # type: ignore[no-untyped-call]
    for claim in resource.list_resource_claim_for_all_namespaces().items:
        allocation = (api.sanitize_for_serialization(claim).get("status") or {}).get("allocation")  # type: ignore[no-untyped-call]
        if allocation:
            add_usage(used, allocation, slices)
    return used


def test_a_plan_read_through_a_kubeconfig_is_what_the_scheduler_stand_in_then_places(
    served: tuple[client.ApiClient, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api, kubeconfig = served
    core, resource = client.CoreV1Api(api), client.ResourceV1Api(api)
    for device_class in device_classes(DRIVER):
        resource.create_device_class(device_class)  # type: ignore[arg-type]
    for name, devices in (("node-a", [gpu(0), gpu(1)]), ("node-b", [gpu(0), npu(1)])):
        core.create_node(node_object(name))  # type: ignore[arg-type]
        for resource_slice in node_slices(name, devices):
            resource.create_resource_slice(resource_slice)  # type: ignore[arg-type]
    # Something runs already: a 40Gi/50 % share, which the stand-in (packing) puts on node-a's gpu-0.
    big = template("big", claim_spec(request(GPU, "40Gi", "50")))
    resource.create_namespaced_resource_claim_template("default", big)  # type: ignore[arg-type]
    core.create_namespaced_pod("default", pod("running", "big"))  # type: ignore[arg-type]
    scheduler = SimScheduler(api)
    scheduler.schedule_once()
    assert pod_node(core, "running") == "node-a"  # the stand-in packs
    # The workload names a template that only the cluster holds.
    gpu_24 = template("gpu-24", claim_spec(request(GPU, "24Gi", "25")))
    resource.create_namespaced_resource_claim_template("default", gpu_24)  # type: ignore[arg-type]
    work = tmp_path / "deployment.yaml"
    work.write_text(yaml.safe_dump(deployment("infer", pod_spec({"xpu": "gpu-24"}), replicas=12)))

    assert main(["plan", "--kubeconfig", str(kubeconfig), "--workload", str(work), "-o", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    # node-a: gpu-0 keeps 40Gi after the running share (one 24Gi share), gpu-1 three; node-b: three.
    assert planned["replicas"] == {"requested": 12, "placed": 7, "unplaced": 5}
    assert {n["name"]: n["replicas"] for n in planned["nodes"]} == {"node-a": 4, "node-b": 3}

    for index in range(12):
        core.create_namespaced_pod("default", pod(f"infer-{index}", "gpu-24"))  # type: ignore[arg-type]
    scheduler.schedule_once()
    scheduler.schedule_once()  # a second pass finds nothing more to place
    bound = [name for name in (f"infer-{i}" for i in range(12)) if pod_node(core, name)]
    assert len(bound) == planned["replicas"]["placed"]
    real = {k: v for k, v in used_per_device(resource, api).items() if any(v.values())}
    assert planned_usage(planned) == real
