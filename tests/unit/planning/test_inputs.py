"""Reading what ``xpushare plan`` is given: the workload (every kind it takes, errors naming the field) and
cluster dumps (several documents, Lists, JSON, bounded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dra_driver.planning import PlanInputError, PlanOptions, parse_workload
from dra_driver.planning.files import load_cluster_files
from tests.support.plan_cluster import (
    GPU,
    NPU,
    claim_spec,
    deployment,
    gpu,
    node_object,
    node_slices,
    pod_spec,
    request,
    template,
)
from tests.unit.planning.helpers import run, snapshot

GPU_T = template("gpu-t", claim_spec(request(GPU, "16Gi", "25")))


def test_a_template_gives_each_replica_one_claim_like_it() -> None:
    work = parse_workload([GPU_T], "w.yaml")
    assert (work.kind, work.name, work.pod) == ("ResourceClaimTemplate", "gpu-t", None)
    (claim,) = work.replica_claims(3)
    assert claim["metadata"]["name"] == "gpu-t-3"
    assert claim["spec"] == GPU_T["spec"]["spec"]


def test_a_claim_is_planned_as_a_template_of_itself() -> None:
    obj = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "c", "namespace": "ml"},
        "spec": claim_spec(request(NPU)),
    }
    work = parse_workload([obj], "w.yaml")
    assert (work.namespace, [c.spec for c in work.claims]) == ("ml", [obj["spec"]])


def test_a_deployment_names_its_templates_and_brings_its_replicas_and_pod_terms() -> None:
    spec = pod_spec({"gpu": "gpu-t", "npu": "npu-t"}, node_selector={"pool": "a"})
    docs = [deployment("infer", spec, replicas=7), GPU_T, template("npu-t", claim_spec(request(NPU)))]
    work = parse_workload(docs, "w.yaml")
    assert (work.kind, work.replicas) == ("Deployment", 7)
    assert [(c.name, c.origin) for c in work.claims] == [
        ("gpu", "ResourceClaimTemplate default/gpu-t"),
        ("npu", "ResourceClaimTemplate default/npu-t"),
    ]
    assert work.pod is not None
    assert work.pod.node_selector == {"pool": "a"}
    assert [c["metadata"]["name"] for c in work.replica_claims(0)] == ["infer-0-gpu", "infer-0-npu"]


def test_a_template_the_file_lacks_is_read_from_the_cluster() -> None:
    asked = []

    def lookup(namespace: str, name: str) -> dict[str, object] | None:
        asked.append((namespace, name))
        return GPU_T if name == "gpu-t" else None

    work = parse_workload([deployment("infer", pod_spec({"gpu": "gpu-t"}), namespace="ml")], "w.yaml", lookup)
    assert asked == [("ml", "gpu-t")]
    assert work.claims[0].spec == GPU_T["spec"]["spec"]


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        pytest.param(
            [deployment("d", pod_spec({"gpu": "missing"}))],
            "Deployment default/d: spec.template.spec.resourceClaims[0].resourceClaimTemplateName: "
            "ResourceClaimTemplate default/missing is not in the file",
            id="missing-template",
        ),
        pytest.param(
            [
                {
                    "kind": "Pod",
                    "metadata": {"name": "p"},
                    "spec": {"resourceClaims": [{"name": "x", "resourceClaimName": "shared"}]},
                }
            ],
            "Pod default/p: spec.resourceClaims[0].resourceClaimName: a claim that every replica shares",
            id="shared-claim",
        ),
        pytest.param(
            [{"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}],
            "Pod default/p: spec.resourceClaims: empty",
            id="no-claims",
        ),
        pytest.param(
            [template("t", claim_spec(request(GPU, count=0)))],
            "ResourceClaimTemplate default/t: spec.spec.devices.requests[0].exactly.count: "
            "must be an integer of at least 1, got 0",
            id="count-0",
        ),
        pytest.param(
            [template("t", claim_spec(request(GPU, "16Gb")))],
            "ResourceClaimTemplate default/t: spec.spec.devices.requests[0].exactly.capacity.requests.memory",
            id="bad-quantity",
        ),
        pytest.param(
            [template("t", {"devices": {"requests": []}})],
            "ResourceClaimTemplate default/t: spec.spec.devices.requests: empty",
            id="no-requests",
        ),
        pytest.param(
            [deployment("a", pod_spec({"g": "gpu-t"})), deployment("b", pod_spec({"g": "gpu-t"})), GPU_T],
            "holds several workloads (Deployment a, Deployment b)",
            id="two-workloads",
        ),
        pytest.param(
            [{"kind": "Service", "metadata": {"name": "s"}}], "w.yaml: nothing to plan", id="nothing"
        ),
        pytest.param(
            [deployment("d", {**pod_spec({"g": "gpu-t"}), "tolerations": [{"operator": "Maybe"}]}), GPU_T],
            "spec.template.spec.tolerations[0].operator: 'Maybe'; allowed Equal, Exists",
            id="toleration",
        ),
    ],
)
def test_bad_workloads_are_refused_naming_the_field(documents: list[dict[str, object]], message: str) -> None:
    with pytest.raises(PlanInputError) as refused:
        parse_workload(documents, "w.yaml")
    assert message in str(refused.value)


def test_an_unknown_device_class_is_refused_naming_the_field_and_the_known_ones() -> None:
    work = parse_workload([template("t", claim_spec(request("tpu.example.com")))], "w.yaml")
    with pytest.raises(PlanInputError) as refused:
        run(snapshot(node_slices("a", [gpu(0)])), work, 1)
    assert str(refused.value) == (
        "ResourceClaimTemplate default/t: spec.spec.devices.requests[0].exactly.deviceClassName: DeviceClass "
        "tpu.example.com is not in the cluster; known: gpu.xpushare.io, npu.xpushare.io"
    )


@pytest.mark.parametrize("replicas", [0, -1, 100_001])
def test_replicas_outside_the_range_are_refused_naming_the_flag(replicas: int) -> None:
    with pytest.raises(
        PlanInputError, match=rf"^--replicas: {replicas} is out of range; allowed 1\.\.100000$"
    ):
        PlanOptions(replicas)


def test_cluster_files_take_several_documents_lists_and_json(tmp_path: Path) -> None:
    slices = node_slices("a", [gpu(0)]) + node_slices("b", [gpu(0)])
    (tmp_path / "slices.yaml").write_text(
        yaml.safe_dump_all([slices[0], {"apiVersion": "v1", "kind": "List", "items": [slices[1]]}])
    )
    bare = {
        "apiVersion": "v1",
        "kind": "NodeList",
        "items": [{k: v for k, v in node_object("a").items() if k != "kind"}],
    }
    (tmp_path / "nodes.json").write_text(json.dumps(bare))
    (tmp_path / "extra.json").write_text(json.dumps([{"kind": "Service", "metadata": {"name": "s"}}]))
    cluster = load_cluster_files([str(tmp_path / n) for n in ("slices.yaml", "nodes.json", "extra.json")])
    assert [s["metadata"]["name"] for s in cluster.slices] == [s["metadata"]["name"] for s in slices]
    assert [n["kind"] for n in cluster.nodes] == ["Node"]
    assert cluster.ignored == {"Service": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "a: &x [1, 2]\nb: *x\n",
            "YAML aliases are not read in cluster dumps",
            id="alias",
        ),
        pytest.param(
            "kind: ResourceSlice\napiVersion: resource.k8s.io/v1beta1\n",
            "object 1 (ResourceSlice): apiVersion resource.k8s.io/v1beta1 is not read; "
            "allowed resource.k8s.io/v1",
            id="old-version",
        ),
        pytest.param("kind: [", "is neither valid YAML nor JSON at line", id="not-yaml"),
        pytest.param("- 1\n- 2\n", "object 1: expected an object, got int", id="not-objects"),
    ],
)
def test_bad_cluster_files_are_refused_saying_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "dump.yaml"
    path.write_text(text)
    with pytest.raises(PlanInputError) as refused:
        load_cluster_files([str(path)])
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_a_billion_laughs_dump_is_refused_before_anything_walks_it(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 30)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PlanInputError, match="YAML aliases are not read"):
        load_cluster_files([str(path)])  # 10**30 values if expanded: refused in milliseconds
