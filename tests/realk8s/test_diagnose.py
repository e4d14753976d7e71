"""``xpushare diagnose --kubeconfig`` on a real cluster, run as a user runs it (a subprocess).

A claim allocated by the real scheduler, prepared over the plugin's socket and reserved by a running pod:
nothing is wrong. Then the pod is deleted without the kubelet's unprepare: the real resourceclaim
controller deletes the claim, the checkpoint keeps it, and diagnose names it stale with the fix. Last, an
identity that RBAC grants nothing: each check is a finding naming the permission kube-apiserver refused,
never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from tests.realk8s.conftest import TestNode, create_pod, wait_for
from tests.realk8s.test_allocation import bound_claim, claim_ref, create_template
from tests.support.fakehost import ascend_host, nvidia_host
from tests.support.plugin_node import INVENTORY

Findings = list[dict[str, str]]


def _diagnose(node: TestNode, plugin: Plugin, kubeconfig: Path) -> tuple[int, Findings]:
    s = plugin.settings
    root = nvidia_host(ascend_host(node.root / "host-root"))
    places = {
        "--state-dir": s.state_dir,
        "--run-dir": s.run_dir,
        "--cdi-dir": s.cdi_dir,
        "--host-root": root,
        "--registry-dir": s.registry_dir,
        "--plugin-dir": s.dra_dir,
        "--kubeconfig": kubeconfig,
        "--node": node.name,
        "--api-timeout": 20,
    }
    command = [sys.executable, "-m", "dra_driver", "--log-level", "ERROR", "diagnose", "-o", "json"]
    command += [str(x) for pair in places.items() for x in pair]
    env = {**os.environ, "XPUSHARE_DISCOVERY_BACKEND": "mock", "XPUSHARE_INVENTORY": str(INVENTORY)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, body["findings"]


def _problems(findings: Findings) -> dict[str, dict[str, str]]:
    return {f["subject"]: f for f in findings if f["severity"] != "info"}


def _kubeconfig_of_nobody(node: TestNode) -> Path:
    """A kubeconfig for a fresh ServiceAccount that no RBAC rule names."""
    core = node.cluster.core
    core.create_namespaced_service_account(
        node.namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    status = core.create_namespaced_service_account_token("nobody", node.namespace, request).status
    assert status is not None
    token = status.token
    admin = node.cluster.api.configuration
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "nobody",
        "clusters": [
            {"name": "c", "cluster": {"server": admin.host, "certificate-authority": admin.ssl_ca_cert}}
        ],
        "users": [{"name": "nobody", "user": {"token": token}}],
        "contexts": [{"name": "nobody", "context": {"cluster": "c", "user": "nobody"}}],
    }
    path = node.root / "nobody.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_diagnose_agrees_with_a_real_cluster_then_finds_a_stale_claim_and_names_refused_permissions(
    node: TestNode, consumable_plugin: Plugin, kubelet: KubeletClient
) -> None:
    create_template(node, "npu-16gi", "npu.xpushare.io", "16Gi", "25")
    create_pod(node, "train", "npu-16gi")
    claim = bound_claim(node, "train")
    uid, name = claim["metadata"]["uid"], claim["metadata"]["name"]
    assert kubelet.prepare([claim_ref(claim)], version="v1").claims[uid].error == ""
    node.cluster.core.patch_namespaced_pod_status("train", node.namespace, {"status": {"phase": "Running"}})

    code, findings = _diagnose(node, consumable_plugin, node.cluster.kubeconfig)
    assert _problems(findings) == {}
    assert code == 0
    seen = {f["subject"]: f["message"] for f in findings}
    assert seen[f"pool {node.name}"].endswith("in 1 ResourceSlice(s), offering gpu-0, npu-0, npu-1")
    assert seen["claims"] == "1 allocated on this node by the API server, 1 prepared here"

    node.cluster.core.delete_namespaced_pod("train", node.namespace, grace_period_seconds=0)

    def claim_gone() -> bool:
        try:
            node.cluster.resource.read_namespaced_resource_claim(name, node.namespace)
        except ApiException as err:
            return bool(err.status == 404)
        return False

    wait_for("the resourceclaim controller to delete the claim", claim_gone, timeout_s=60)
    code, findings = _diagnose(node, consumable_plugin, node.cluster.kubeconfig)
    (stale,) = _problems(findings).values()
    assert code == 1
    assert (stale["severity"], stale["subject"]) == ("error", f"claim {node.namespace}/{name} ({uid})")
    assert stale["message"].startswith("prepared on this node, but the claim no longer exists (stale)")

    code, findings = _diagnose(node, consumable_plugin, _kubeconfig_of_nobody(node))
    refused = {subject: f for subject, f in _problems(findings).items() if "forbidden" in f["message"]}
    assert set(refused) == {
        f"Node {node.name}",
        f"ResourceSlices of node {node.name}",
        "DeviceClass gpu.xpushare.io",
        "DeviceClass npu.xpushare.io",
        "ResourceClaims",
    }
    account = f"system:serviceaccount:{node.namespace}:nobody"
    assert all(account in f["message"] and f["severity"] == "warning" for f in refused.values())
    assert refused["ResourceClaims"]["hint"].startswith("grant list on resourceclaims.resource.k8s.io to it")
