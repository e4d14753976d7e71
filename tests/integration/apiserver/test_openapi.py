"""Without the upstream documents the server serves OpenAPI generated from the client models, and plain
kubectl (no --validate=false) creates, applies, edits and explains against it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.apiserver.openapi import TITLE
from dra_driver.simulation.apiserver.schema import SCHEMAS_ENV
from tests.integration.apiserver import rawhttp
from tests.integration.apiserver.test_cli import running_cli

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

SLICE = """
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata:
  name: s1
spec:
  driver: xpushare.io
  nodeName: n1
  pool: {name: n1, generation: 1, resourceSliceCount: 1}
  devices:
  - name: npu-0
    capacity:
      memory: {value: 64Gi}
      cores: {value: 100}
"""
POD = """
apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels: {app: demo}
spec:
  containers:
  - name: main
    image: busybox
    env: [{name: A, value: "1"}]
  - name: side
    image: busybox
"""
NODE = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n"


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[ApiServer]:
    with ApiServer(schema_dir=tmp_path / "absent") as server:
        yield server


@pytest.fixture
def kubeconfig(generated: ApiServer, tmp_path: Path) -> Path:
    return generated.write_kubeconfig(tmp_path / "kubeconfig")


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    home = kubeconfig.parent
    full_env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home), **(env or {})}
    return subprocess.run([KUBECTL, "--cache-dir", str(home / "cache"), *args], input=stdin, env=full_env,
                          capture_output=True, text=True, timeout=60, check=False)


def ok(kubeconfig: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    done = kubectl(kubeconfig, *args, stdin=stdin, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_index_points_at_generated_documents(generated: ApiServer) -> None:
    status, index, _ = rawhttp.request(generated, "GET", "/openapi/v3")
    assert status == 200
    assert set(index["paths"]) == {"api/v1", "apis/resource.k8s.io/v1", "apis/coordination.k8s.io/v1"}
    for entry in index["paths"].values():
        status, document, _ = rawhttp.request(generated, "GET", entry["serverRelativeURL"])
        assert status == 200
        assert document["info"]["title"] == TITLE
    _, document, _ = rawhttp.request(generated, "GET", "/openapi/v3/apis/resource.k8s.io/v1")
    assert "io.k8s.api.resource.v1.ResourceSlice" in document["components"]["schemas"]
    status, _, _ = rawhttp.request(generated, "GET", "/openapi/v3/apis/resource.k8s.io/v9")
    assert status == 404


def test_openapi_v2_is_json_and_protobuf_only_is_not_acceptable(generated: ApiServer) -> None:
    status, document, headers = rawhttp.request(generated, "GET", "/openapi/v2",
                                                headers={"Accept": "application/json"})
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert document["info"]["title"] == TITLE
    assert "io.k8s.api.core.v1.Pod" in document["definitions"]
    protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    status, body, _ = rawhttp.request(generated, "GET", "/openapi/v2", headers={"Accept": protobuf})
    assert (status, body["reason"]) == (406, "NotAcceptable")
    status, _, _ = rawhttp.request(generated, "GET", "/openapi/v2",
                                   headers={"Accept": f"{protobuf}, application/json"})
    assert status == 200


def test_a_bad_body_is_a_422_naming_the_field(generated: ApiServer) -> None:
    body = NODE + "spec:\n  unschedulable: \"yes\"\n"
    status, answer, _ = rawhttp.request(generated, "POST", "/api/v1/nodes", body,
                                        content_type="application/yaml")
    assert status == 422
    assert [c["field"] for c in answer["details"]["causes"]] == ["spec.unschedulable"]


def test_quantities_are_canonical_and_may_be_numbers(generated: ApiServer) -> None:
    body = SLICE.replace("64Gi", "65536Mi")
    status, created, _ = rawhttp.request(generated, "POST", "/apis/resource.k8s.io/v1/resourceslices", body,
                                         content_type="application/yaml")
    assert status == 201, created
    assert created["spec"]["devices"][0]["capacity"] == {"memory": {"value": "64Gi"},
                                                         "cores": {"value": "100"}}


@needs_kubectl
def test_kubectl_create_apply_and_server_side_apply(kubeconfig: Path) -> None:
    assert "node/n1 created" in ok(kubeconfig, "create", "-f", "-", stdin=NODE)
    assert "created" in ok(kubeconfig, "apply", "-f", "-", stdin=SLICE)
    assert "created" in ok(kubeconfig, "apply", "-f", "-", stdin=POD)
    changed = POD.replace("app: demo", "app: changed")
    assert "pod/demo configured" in ok(kubeconfig, "apply", "-f", "-", stdin=changed)
    assert ok(kubeconfig, "get", "pod", "demo", "-o", "jsonpath={.metadata.labels.app}") == "changed"
    applied = ok(kubeconfig, "apply", "--server-side", "-f", "-", stdin=SLICE.replace("generation: 1",
                                                                                       "generation: 2"))
    assert "serverside-applied" in applied
    generation = ok(kubeconfig, "get", "resourceslice", "s1", "-o", "jsonpath={.spec.pool.generation}")
    assert generation == "2"


@needs_kubectl
def test_kubectl_edit_merges_by_the_list_keys(kubeconfig: Path, tmp_path: Path) -> None:
    ok(kubeconfig, "apply", "-f", "-", stdin=POD)
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/image: busybox/image: alpine/" "$1"\n')
    editor.chmod(0o755)
    assert "pod/demo edited" in ok(kubeconfig, "edit", "pod", "demo", env={"KUBE_EDITOR": str(editor)})
    images = ok(kubeconfig, "get", "pod", "demo", "-o", "jsonpath={.spec.containers[*].image}")
    assert images == "alpine alpine"
    env = ok(kubeconfig, "get", "pod", "demo", "-o", "jsonpath={.spec.containers[0].env[0].name}")
    assert env == "A"


@needs_kubectl
def test_kubectl_explain_prints_the_description(kubeconfig: Path) -> None:
    explained = ok(kubeconfig, "explain", "resourceslices.spec.devices")
    assert "Devices lists some or all of the devices in this pool." in " ".join(explained.split())
    assert "FIELD: devices <[]Device>" in explained


@needs_kubectl
@pytest.mark.parametrize(("manifest", "message"), [
    (NODE + "spec:\n  unschedulable: \"yes\"\n", "spec.unschedulable"),
    (NODE + "spec:\n  bogus: 1\n", 'unknown field "spec.bogus"'),
    (SLICE.replace("generation: 1", "generation: one"), "spec.pool.generation"),
])
def test_kubectl_apply_of_a_bad_object_names_the_field(kubeconfig: Path, manifest: str, message: str) -> None:
    done = kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest)
    assert done.returncode != 0
    assert message in done.stderr
    assert "failed to download openapi" not in done.stderr


@needs_kubectl
def test_the_cli_without_the_variable_serves_generated_documents(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed package never looks for ../shared: unset, the served documents are the generated
    ones even inside a checkout that has the upstream files beside it."""
    monkeypatch.delenv(SCHEMAS_ENV, raising=False)
    with running_cli(tmp_path / "kube" / "config") as config:
        assert "node/n1 created" in ok(config, "apply", "-f", "-", stdin=NODE)
        document = ok(config, "get", "--raw", "/openapi/v3/apis/resource.k8s.io/v1")
        assert f'"title": "{TITLE}"' in document or f'"title":"{TITLE}"' in document
        assert "Devices lists some or all" in ok(config, "explain", "resourceslices.spec.devices")
