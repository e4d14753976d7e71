"""``xpushare diagnose --kubeconfig`` against the embedded API server, beside a running plugin.

A healthy node first: the plugin publishes, a claim is allocated by the scheduler stand-in, prepared over
the plugin's socket and reserved by a running pod, and diagnose finds nothing wrong. Then one broken
state per test (slices edited by hand, a device unhealthy without its taint, DeviceClasses gone or
changed, claims the API server and the checkpoint disagree on, the plugin's sockets gone or dead), and
API servers that cannot answer (nothing listens, one that never answers, one that forbids everything):
each finding names its object and fix, and no run ends in a traceback or waits past --api-timeout.
"""

from __future__ import annotations

import copy
import http.server
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controller.settings import DRIVER_NAME as DRIVER
from controller.settings import UNHEALTHY_TAINT_KEY
from controller.slices.build import slice_name
from dra_driver.cli import main
from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from kubeletplugin.settings import PluginSettings
from tests.integration.kubeletplugin.conftest import NODE, NS, Allocate, ref
from tests.support.fakehost import ascend_host, nvidia_host

Findings = list[dict[str, str]]


def run_diagnose(
    capsys: pytest.CaptureFixture[str], flags: dict[str, object], *switches: str
) -> tuple[int, Findings]:
    """``xpushare diagnose -o json`` with ``flags``; the exit code and the findings. The root logger is
    put back afterwards: the CLI points it at this test's captured stderr, which the plugin's teardown
    would write to once it is closed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = main(["diagnose", "-o", "json", *switches, *(str(x) for pair in flags.items() for x in pair)])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, body["findings"]


class Diagnose:
    """Diagnose of the plugin's node, on a fake host root whose mock devices are the plugin's."""

    def __init__(
        self,
        tmp_path: Path,
        settings: PluginSettings,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        kubeconfig: Path,
    ) -> None:
        self.settings, self.capsys, self.kubeconfig = settings, capsys, kubeconfig
        self.root = nvidia_host(ascend_host(tmp_path / "host-root"))
        monkeypatch.setenv("XPUSHARE_DISCOVERY_BACKEND", "mock")
        monkeypatch.setenv("XPUSHARE_INVENTORY", str(settings.discovery_options["inventory"]))

    def __call__(self) -> tuple[int, Findings]:
        s = self.settings
        return run_diagnose(
            self.capsys,
            {
                "--state-dir": s.state_dir,
                "--run-dir": s.run_dir,
                "--cdi-dir": s.cdi_dir,
                "--host-root": self.root,
                "--kubeconfig": self.kubeconfig,
                "--node": NODE,
                "--registry-dir": s.registry_dir,
                "--plugin-dir": s.dra_dir,
                "--api-timeout": 5,
            },
        )


def problems(findings: Findings) -> dict[tuple[str, str], dict[str, str]]:
    """The errors and warnings by (severity, subject); two about one subject fail the test."""
    found = [f for f in findings if f["severity"] != "info"]
    keyed = {(f["severity"], f["subject"]): f for f in found}
    assert len(keyed) == len(found), found
    return keyed


def facts(findings: Findings) -> dict[str, str]:
    return {f["subject"]: f["message"] for f in findings if f["severity"] == "info"}


@pytest.fixture
def diagnose(
    apiserver: ApiServer,
    kube_client: client.ApiClient,
    plugin: Plugin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Diagnose:
    """Diagnose of the plugin's node, whose Node object exists."""
    client.CoreV1Api(kube_client).create_node(client.V1Node(metadata=client.V1ObjectMeta(name=NODE)))
    work = plugin.settings.state_dir.parent  # the test's node directory
    kubeconfig = apiserver.write_kubeconfig(work / "kubeconfig")
    return Diagnose(work, plugin.settings, monkeypatch, capsys, kubeconfig)


def run_pod(kube_client: client.ApiClient, name: str) -> None:
    """Set the pod's phase as the kubelet does once its containers run."""
    client.CoreV1Api(kube_client).patch_namespaced_pod_status(name, NS, {"status": {"phase": "Running"}})


def the_slice(kube_client: client.ApiClient) -> dict[str, Any]:
    (obj,) = (
        client.ResourceV1Api(kube_client).list_resource_slice(field_selector=f"spec.nodeName={NODE}").items
    )
    found: dict[str, Any] = kube_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return found


def test_a_healthy_node_agrees_with_the_api_server(
    kube_client: client.ApiClient,
    kubelet: KubeletClient,
    allocate: Allocate,
    diagnose: Diagnose,
) -> None:
    claim = allocate("train")
    assert kubelet.prepare([ref(claim)]).claims[claim["metadata"]["uid"]].error == ""
    run_pod(kube_client, "train-pod")
    code, findings = diagnose()
    assert problems(findings) == {}
    assert code == 0
    seen = facts(findings)
    assert seen["registration"].endswith(
        f"answers GetInfo: xpushare.io at {diagnose.settings.dra_socket} "
        "(v1.DRAPlugin, v1beta1.DRAPlugin, v1alpha1.DRAResourceHealth)"
    )
    assert seen[f"pool {NODE}"] == "generation 1 in 1 ResourceSlice(s), offering gpu-0, npu-0, npu-1"
    assert seen["claims"] == "1 allocated on this node by the API server, 1 prepared here"


@pytest.mark.usefixtures("allocate")  # the DeviceClasses
def test_slices_that_disagree_with_the_node_are_named_with_the_fix(
    kube_client: client.ApiClient, diagnose: Diagnose
) -> None:
    resource = client.ResourceV1Api(kube_client)
    current = the_slice(kube_client)
    name = current["metadata"]["name"]
    devices = {d["name"]: d for d in current["spec"]["devices"]}
    stranger = copy.deepcopy(devices["npu-0"])
    stranger["name"] = "npu-7"
    stranger["attributes"]["xpushare.io/uuid"] = {"string": "NPU-NOT-HERE"}
    devices["npu-0"]["attributes"]["xpushare.io/uuid"] = {"string": "NPU-SWAPPED"}
    devices["gpu-0"]["taints"] = [{"key": UNHEALTHY_TAINT_KEY, "value": "ECC", "effect": "NoSchedule"}]
    current["spec"]["devices"] = [devices["npu-0"], devices["gpu-0"], stranger]  # npu-1 left out
    current["spec"]["pool"]["resourceSliceCount"] = 2  # and its second slice never written
    resource.replace_resource_slice(name, current)  # type: ignore[arg-type]
    old = copy.deepcopy(current)
    old["metadata"] = {"name": f"{name}-old"}
    old["spec"]["pool"].update(generation=0, resourceSliceCount=1)
    old["spec"]["devices"] = [devices["gpu-0"] | {"name": "gpu-9"}]
    resource.create_resource_slice(old)  # type: ignore[arg-type]

    code, findings = diagnose()
    found = problems(findings)
    assert code == 1
    missing = found[("error", "device npu-1 (1F7D3B82-C4E9-6A05-9B2D-E83A5C17F4B0)")]
    assert missing["message"] == "found on this node but not in its ResourceSlices: no claim can get it"
    assert missing["hint"].startswith("the plugin publishes at its start and on health changes: restart it")
    swapped = found[("error", "device npu-0 (6C2A9F4E-31B7-0D58-A1E3-7F0C4B9D2E61)")]
    assert swapped["message"].startswith(f"ResourceSlice {name} offers npu-0 as NPU-SWAPPED")
    tainted = found[("warning", "device gpu-0 (GPU-8d4f0c2a-7b61-4e39-a5c8-2f1e9d6b3a70)")]
    assert tainted["message"].startswith(
        f"healthy, but ResourceSlice {name} still carries its {UNHEALTHY_TAINT_KEY} taint"
    )
    stray = found[("error", "device npu-7")]
    assert stray["message"] == (
        f"offered in ResourceSlice {name} (NPU-NOT-HERE), but discovery does not find it "
        "on this node: claims allocated on it fail to prepare"
    )
    incomplete = found[("error", f"pool {NODE}")]
    assert incomplete["message"].startswith("incomplete: 1 of 2 ResourceSlices of generation 1")
    stale = found[("warning", f"ResourceSlice {name}-old")]
    assert stale["message"] == "of pool generation 0, the pool is at 1: the scheduler ignores it"
    assert len(found) == 6


@pytest.mark.usefixtures("allocate")  # the DeviceClasses
def test_an_unhealthy_device_offered_without_its_taint_is_an_error(
    tmp_path: Path,
    diagnose: Diagnose,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sick = yaml.safe_load(Path(diagnose.settings.discovery_options["inventory"]).read_text())
    sick["devices"][1].update(health="Unhealthy", healthMessage="HBM ECC errors")
    inventory = tmp_path / "sick.yaml"  # what discovery finds now; the plugin has not seen it yet
    inventory.write_text(yaml.safe_dump(sick))
    monkeypatch.setenv("XPUSHARE_INVENTORY", str(inventory))
    code, findings = diagnose()
    found = problems(findings)
    assert code == 1
    untainted = found[("error", "device npu-1 (1F7D3B82-C4E9-6A05-9B2D-E83A5C17F4B0)")]
    assert untainted["message"] == (
        f"unhealthy (HBM ECC errors) but offered in ResourceSlice {slice_name(NODE, DRIVER, 0)} "
        f"without the {UNHEALTHY_TAINT_KEY} taint: the scheduler still places claims "
        "on it"
    )
    assert found[("error", "NPU npu-1")]["message"] == "HBM ECC errors"  # the host check of the same chip
    assert len(found) == 2


@pytest.mark.usefixtures("allocate")  # the DeviceClasses
def test_device_classes_missing_or_changed_are_named(
    kube_client: client.ApiClient, diagnose: Diagnose
) -> None:
    resource = client.ResourceV1Api(kube_client)
    resource.delete_device_class("gpu.xpushare.io")
    resource.patch_device_class("npu.xpushare.io", {"spec": {"selectors": [{"cel": {"expression": "true"}}]}})
    code, findings = diagnose()
    found = problems(findings)
    assert code == 1
    assert found[("error", "DeviceClass gpu.xpushare.io")]["message"].startswith(
        "does not exist: claims for this node's gpu devices name it"
    )
    changed = found[("warning", "DeviceClass npu.xpushare.io")]
    assert changed["message"].startswith("its selectors are not the driver's")
    assert len(found) == 2


def test_claims_the_api_server_and_the_checkpoint_disagree_on(
    kube_client: client.ApiClient,
    kubelet: KubeletClient,
    allocate: Allocate,
    diagnose: Diagnose,
) -> None:
    unprepared = allocate("unprepared", memory="8Gi")
    run_pod(kube_client, "unprepared-pod")  # the kubelet's prepare never reached the plugin
    gone = allocate("gone", memory="8Gi")
    assert kubelet.prepare([ref(gone)]).claims[gone["metadata"]["uid"]].error == ""
    client.CoreV1Api(kube_client).delete_namespaced_pod("gone-pod", NS)
    resource = client.ResourceV1Api(kube_client)
    resource.patch_namespaced_resource_claim("gone", NS, {"metadata": {"finalizers": None}})
    resource.delete_namespaced_resource_claim("gone", NS)  # and its unprepare never came

    code, findings = diagnose()
    found = problems(findings)
    assert code == 1
    missing = found[("error", f"claim {NS}/unprepared ({unprepared['metadata']['uid']})")]
    assert missing["message"] == (
        f"allocated on this node and reserved by pod {NS}/unprepared-pod, which runs "
        "here, but not prepared by the plugin (not in its checkpoint)"
    )
    assert missing["hint"].endswith("delete the pod so that the kubelet prepares the claim again")
    stale = found[("error", f"claim {NS}/gone ({gone['metadata']['uid']})")]
    assert stale["message"].startswith("prepared on this node, but the claim no longer exists (stale)")
    assert "restart the plugin" in stale["hint"]
    assert len(found) == 2
    assert facts(findings)["claims"] == "1 allocated on this node by the API server, 1 prepared here"


@pytest.mark.usefixtures("allocate")  # the DeviceClasses
def test_the_plugin_s_sockets_gone_or_dead_are_errors(plugin: Plugin, diagnose: Diagnose) -> None:
    settings = plugin.settings
    plugin.stop()
    code, findings = diagnose()
    found = problems(findings)
    assert code == 1
    gone = found[("error", f"registration socket {settings.registration_socket}")]
    assert gone["message"] == "is missing: the kubelet does not know a plugin for xpushare.io here"
    assert found[("error", f"DRA socket {settings.dra_socket}")]["message"].startswith("is missing")
    with socket.socket(socket.AF_UNIX) as dead:  # a socket file nothing listens on: a plugin that died
        dead.bind(str(settings.registration_socket))
    code, findings = diagnose()
    dead_socket = problems(findings)[("error", f"registration socket {settings.registration_socket}")]
    assert dead_socket["message"].startswith("nothing answers on it (GetInfo failed (UNAVAILABLE))")
    assert dead_socket["hint"] == "restart the plugin's pod; it replaces the socket"


# --- API servers that cannot answer ----------------------------------------------------------------------


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


def _alone(
    tmp_path: Path, kubeconfig: Path, capsys: pytest.CaptureFixture[str], timeout_s: float = 5
) -> tuple[int, Findings, float]:
    """Diagnose of a node without a plugin (nothing prepared, no sockets), and how long it took."""
    started = time.monotonic()
    code, findings = run_diagnose(
        capsys,
        {
            "--state-dir": tmp_path / "s",
            "--run-dir": tmp_path / "r",
            "--cdi-dir": tmp_path / "c",
            "--registry-dir": tmp_path / "reg",
            "--plugin-dir": tmp_path / "plug",
            "--node": NODE,
            "--kubeconfig": kubeconfig,
            "--api-timeout": timeout_s,
        },
        "--no-host",
    )
    return code, findings, time.monotonic() - started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_api_server_nothing_listens_on_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings, _ = _alone(
        tmp_path, _kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{_free_port()}"), capsys
    )
    api = [f for f in findings if f["subject"] == "API server"]
    assert code == 1
    assert [(f["severity"], f["message"].split(":")[0]) for f in api] == [("error", "not reachable")]
    assert "check the kubeconfig's server" in api[0]["hint"]
    assert not [
        f for f in findings if f["subject"].startswith(("Node", "ResourceSlices", "DeviceClass", "claims"))
    ]


def test_an_api_server_that_never_answers_costs_the_timeout_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        code, findings, seconds = _alone(
            tmp_path, _kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}"), capsys, timeout_s=1
        )
    (api,) = [f for f in findings if f["subject"] == "API server"]
    assert (code, api["severity"]) == (1, "error")
    assert "timed out" in api["message"]
    assert seconds < 4  # one budget of 1 s, not one per request or per urllib3 retry


class _Forbidding(http.server.BaseHTTPRequestHandler):
    """Answers every request as kube-apiserver does for an identity without RBAC permission."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "Forbidden",
                "code": 403,
                "message": f'{self.path} is forbidden: User "diagnose" cannot get it',
            }
        )
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def forbidding_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidding)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_forbidden_lists_are_findings_naming_the_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], forbidding_server: str
) -> None:
    code, findings, _ = _alone(tmp_path, _kubeconfig(tmp_path / "kc", forbidding_server), capsys)
    denied = {f["subject"]: f for f in findings if "forbidden to this identity" in f["message"]}
    assert set(denied) == {
        f"Node {NODE}",
        f"ResourceSlices of node {NODE}",
        "DeviceClass gpu.xpushare.io",
        "DeviceClass npu.xpushare.io",
        "ResourceClaims",
    }
    assert all(f["severity"] == "warning" for f in denied.values())
    claims = denied["ResourceClaims"]
    assert claims["message"].startswith("not checked: list on resourceclaims.resource.k8s.io is forbidden")
    assert 'User "diagnose" cannot get it' in claims["message"]
    assert claims["hint"].startswith("grant list on resourceclaims.resource.k8s.io to it")
    assert code == 1  # the sockets of this plugin-less node are missing: errors of their own
