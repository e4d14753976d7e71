"""``xpushare plan`` against the real kube-scheduler: for each scenario the plan is made through the
kubeconfig of a real v1.36 control plane, then the replicas are created there (pods with a
ResourceClaimTemplate: the real kube-controller-manager makes the claims, the real kube-scheduler
allocates them) and, once the scheduler has settled, the test asserts that as many replicas were placed
and that the devices are used as the plan said: device by device when the plan says the cluster is full
(every node then ends in the one state first fit leaves it in), in total otherwise (the scheduler breaks
ties between nodes at random, so which node holds a replica may differ).

One control plane for the module (the tier's session fixture), a few small nodes per scenario with slices
built by the product's slice builder, a namespace per scenario; all removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.settings import PartitionLayout, SliceMode
from dra_driver.cli import main
from dra_driver.core.devices import Device
from tests.realk8s.conftest import Cluster, install_device_classes, name_of, wait_for
from tests.support.control_plane import create_node
from tests.support.plan_cluster import (
    GPU,
    NPU,
    Usage,
    add_usage,
    at_least,
    claim_spec,
    deployment,
    gpu,
    node_slices,
    npu,
    planned_usage,
    pod_spec,
    request,
    template,
)

JSON = dict[str, Any]
LABEL = "xpushare.io/plan-test"
# What the scheduler says of a pod that does not fit (its claims, or its node's pod count).
FINAL = ("cannot allocate all claims", "Too many pods")


@dataclass(frozen=True)
class Scenario:
    name: str
    nodes: dict[str, Callable[[str], list[Device]]]  # node suffix -> its devices (given the node's name)
    claims: dict[str, JSON]  # the replica's pod claim name -> claim spec (a template each)
    replicas: int
    mode: SliceMode = SliceMode.CONSUMABLE
    layout: PartitionLayout | None = None
    existing: tuple[tuple[JSON, int], ...] = ()  # claim spec and how many pods of it run before the plan
    pod_workload: bool = False  # plan a Deployment (pod spec) rather than the bare template
    max_pods: dict[str, int] = field(default_factory=dict)


def gpus(*memories: int, model: str = "H100-SXM5-80GB") -> Callable[[str], list[Device]]:
    return lambda node: [gpu(i, m, model=model, node=node) for i, m in enumerate(memories)]


def only(*makers: Callable[[str, int], Device]) -> Callable[[str], list[Device]]:
    return lambda node: [make(node, i) for i, make in enumerate(makers)]


def H100(node: str, index: int) -> Device:
    return gpu(index, node=node)


def A100(node: str, index: int) -> Device:
    return gpu(index, 40, model="A100-40GB", node=node)


def SICK(node: str, index: int) -> Device:
    return gpu(index, node=node, sick=True)


def NPU_(node: str, index: int) -> Device:
    return npu(index, node=node)


SCENARIOS = [
    Scenario(
        "consumable fill-up",
        {"a": gpus(80, 80), "b": gpus(80)},
        {"xpu": claim_spec(request(GPU, "24Gi", "25"))},
        12,
    ),
    Scenario(
        "mixed existing claims",
        {"a": gpus(80, 80), "b": gpus(80)},
        {"xpu": claim_spec(request(GPU, "16Gi", "25"))},
        14,
        existing=((claim_spec(request(GPU, "40Gi", "50")), 2), (claim_spec(request(GPU, "8Gi", "10")), 3)),
    ),
    Scenario("memory-only requests", {"a": gpus(80, 80)}, {"xpu": claim_spec(request(GPU, "20Gi"))}, 10),
    Scenario(
        "fewer replicas than fit, spread",
        {"a": gpus(80, 80), "b": gpus(80, 80)},
        {"xpu": claim_spec(request(GPU, "16Gi", "25"))},
        6,
    ),
    Scenario(
        "partitioned mode, fixed quarters",
        {"a": gpus(80), "b": gpus(80)},
        {"xpu": claim_spec(request(GPU, selectors=[at_least("16Gi", "25")]))},
        10,
        SliceMode.PARTITIONED,
        PartitionLayout.FIXED,
    ),
    Scenario(
        "partitioned mode, menu on counters",
        {"a": gpus(80)},
        {"xpu": claim_spec(request(GPU, selectors=[at_least("30Gi", "25")]))},
        4,
        SliceMode.PARTITIONED,
        PartitionLayout.MENU,
    ),
    Scenario(
        "exclusive mode",
        {"a": gpus(80, 80), "b": gpus(80)},
        {"xpu": claim_spec(request(GPU))},
        5,
        SliceMode.EXCLUSIVE,
    ),
    Scenario(
        "CEL selector on attributes",
        {"a": only(H100, A100), "b": only(A100, H100)},
        {
            "xpu": claim_spec(
                request(
                    GPU, "10Gi", "20", selectors=['device.attributes["xpushare.io"].model.startsWith("A100")']
                )
            )
        },
        12,
    ),
    Scenario(
        "two-device claims",
        {"a": gpus(80, 80, 80), "b": gpus(80, 80)},
        {"xpu": claim_spec(request(GPU, "40Gi", "50", count=2))},
        6,
    ),
    Scenario(
        "tainted devices",
        {"a": only(H100, SICK), "b": only(SICK)},
        {"xpu": claim_spec(request(GPU, "30Gi", "30"))},
        5,
    ),
    Scenario(
        "several node sizes and kinds",
        {"a": gpus(80, 40, 80, model="H100-SXM5-80GB"), "b": only(NPU_, A100), "c": gpus(80)},
        {"xpu": claim_spec(request(GPU, "20Gi", "20"))},
        20,
    ),
    Scenario(
        "two claims per replica from a Deployment",
        {"a": only(H100, NPU_), "b": only(NPU_, NPU_), "c": only(H100)},
        {"gpu": claim_spec(request(GPU, "16Gi", "20")), "npu": claim_spec(request(NPU, "32Gi", "50"))},
        8,
        pod_workload=True,
    ),
    Scenario(
        "pods limit of a node",
        {"a": gpus(80, 80), "b": gpus(80)},
        {"xpu": claim_spec(request(GPU, "8Gi", "10"))},
        20,
        max_pods={"a": 3},
    ),
]


@dataclass
class Env:
    cluster: Cluster
    namespace: str
    nodes: dict[str, str]  # suffix -> node name
    slices: list[JSON]

    def pod(self, name: str, claims: dict[str, str]) -> JSON:
        spec = pod_spec(claims, node_selector={LABEL: self.namespace})
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    def templates(self, prefix: str, specs: dict[str, JSON]) -> dict[str, str]:
        names = {}
        for claim_name, spec in specs.items():
            body = template(f"{prefix}-{claim_name}", spec, self.namespace)
            self.cluster.resource.create_namespaced_resource_claim_template(self.namespace, body)  # type: ignore[arg-type]
            names[claim_name] = body["metadata"]["name"]
        return names

    def pods(self) -> list[JSON]:
        response = self.cluster.core.list_namespaced_pod(self.namespace, _preload_content=False)
        return list(json.loads(response.data)["items"])  # type: ignore[attr-defined]

    def claims(self) -> list[JSON]:
        response = self.cluster.resource.list_namespaced_resource_claim(
            self.namespace, _preload_content=False
        )
        return list(json.loads(response.data)["items"])  # type: ignore[attr-defined]


def _cleanup(env: Env) -> None:
    core, resource = env.cluster.core, env.cluster.resource
    with contextlib.suppress(ApiException):
        for pod in core.list_namespaced_pod(env.namespace).items:
            core.delete_namespaced_pod(name_of(pod), env.namespace, grace_period_seconds=0)
    with contextlib.suppress(ApiException):
        core.delete_namespace(env.namespace)
    for obj in env.slices:
        with contextlib.suppress(ApiException):
            resource.delete_resource_slice(obj["metadata"]["name"])
    for node in env.nodes.values():
        with contextlib.suppress(ApiException):
            core.delete_node(node)


@pytest.fixture
def env(real_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Env]:
    scenario: Scenario = request.param
    install_device_classes(real_cluster)
    tag = f"p{uuid.uuid4().hex[:6]}"
    nodes = {suffix: f"{tag}-{suffix}" for suffix in scenario.nodes}
    real_cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=tag)))
    made = Env(real_cluster, tag, nodes, [])
    try:
        for suffix, name in nodes.items():
            create_node(real_cluster, name, {LABEL: tag}, max_pods=scenario.max_pods.get(suffix, 110))
            for resource_slice in node_slices(
                name, scenario.nodes[suffix](name), scenario.mode, scenario.layout
            ):
                real_cluster.resource.create_resource_slice(resource_slice)  # type: ignore[arg-type]
                made.slices.append(resource_slice)
        wait_for(
            "the default ServiceAccount",
            lambda: bool(real_cluster.core.list_namespaced_service_account(tag).items),
        )
        yield made
    finally:
        _cleanup(made)


def _decided(pod: JSON) -> str:
    """bound, unschedulable (for a reason that lasts), or '' while the scheduler is still at it."""
    if pod["spec"].get("nodeName"):
        return "bound"
    for condition in (pod.get("status") or {}).get("conditions") or ():
        waiting = condition["type"] == "PodScheduled" and condition["status"] == "False"
        if waiting and any(reason in condition.get("message", "") for reason in FINAL):
            return "unschedulable"
    return ""


def settle(env: Env, prefix: str, count: int, timeout_s: float = 60.0) -> list[JSON]:
    """Wait until every pod named ``prefix*`` is bound or lastingly unschedulable, and stays so."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        pods = [p for p in env.pods() if p["metadata"]["name"].startswith(prefix)]
        states = Counter(_decided(p) for p in pods)
        if len(pods) == count and not states[""]:
            if last == states:
                return pods
            last = states
            time.sleep(1.0)  # the same answer twice, a second apart: settled
            continue
        last = None
        time.sleep(0.3)
    raise AssertionError(
        f"pods {prefix}* did not settle in {timeout_s}s: {Counter(_decided(p) for p in env.pods())}"
    )


def run_existing(env: Env, scenario: Scenario) -> None:
    for index, (spec, count) in enumerate(scenario.existing):
        templates = env.templates(f"old{index}", {"xpu": spec})
        for n in range(count):
            env.cluster.core.create_namespaced_pod(env.namespace, env.pod(f"old{index}-{n}", templates))  # type: ignore[arg-type]
        pods = settle(env, f"old{index}-", count)
        assert all(_decided(p) == "bound" for p in pods), "the existing pods should all fit"


def make_plan(env: Env, scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> JSON:
    documents = [template(f"rep-{name}", spec, env.namespace) for name, spec in scenario.claims.items()]
    if scenario.pod_workload:
        spec = pod_spec(
            {name: f"rep-{name}" for name in scenario.claims}, node_selector={LABEL: env.namespace}
        )
        documents.insert(0, deployment("rep", spec, replicas=scenario.replicas, namespace=env.namespace))
    work = tmp_path / "workload.yaml"
    work.write_text(yaml.safe_dump_all(documents))
    args = [
        "plan",
        "--kubeconfig",
        str(env.cluster.kubeconfig),
        "--workload",
        str(work),
        "--replicas",
        str(scenario.replicas),
        "--namespace",
        env.namespace,
        "--no-compare",
        "-o",
        "json",
    ]
    capsys.readouterr()
    assert main(args) == 0
    return dict(json.loads(capsys.readouterr().out))


def real_usage(env: Env) -> Usage:
    used: Usage = {}
    for claim in env.claims():
        allocation = (claim.get("status") or {}).get("allocation")
        if allocation:
            add_usage(used, allocation, env.slices)
    return {k: v for k, v in used.items() if any(v.values())}


def totals(used: Usage) -> Counter[str]:
    out: Counter[str] = Counter()
    for amounts in used.values():
        for name, value in amounts.items():
            out[name] += value  # type: ignore[assignment]
    return out


@pytest.mark.parametrize(
    ("env", "scenario"),
    [pytest.param(s, s, id=s.name.replace(" ", "-")) for s in SCENARIOS],
    indirect=["env"],
)
def test_the_plan_places_what_the_real_scheduler_places(
    env: Env, scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_existing(env, scenario)
    planned = make_plan(env, scenario, tmp_path, capsys)
    templates = env.templates("rep", scenario.claims)
    for n in range(scenario.replicas):
        env.cluster.core.create_namespaced_pod(env.namespace, env.pod(f"rep-{n}", templates))  # type: ignore[arg-type]
    pods = settle(env, "rep-", scenario.replicas)

    bound = [p for p in pods if _decided(p) == "bound"]
    assert len(bound) == planned["replicas"]["placed"], planned["reason"]
    real, plan = real_usage(env), planned_usage(planned)
    full = planned["replicas"]["unplaced"] > 0
    if full:
        assert plan == real
        per_node = Counter(p["spec"]["nodeName"] for p in bound)
        assert {n["name"]: n["replicas"] for n in planned["nodes"] if n["replicas"]} == dict(per_node)
    else:
        assert totals(plan) == totals(real)
    used = {name: int(value) for name, value in totals(real).items()}
    print(
        f"\nAGREE {scenario.name}: placed {len(bound)}/{scenario.replicas}, devices "
        f"{'equal one by one' if full else 'equal in total'} ({used})"
    )
