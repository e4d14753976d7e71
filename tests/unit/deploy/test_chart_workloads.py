"""Structure of the DaemonSet, the Deployment and the Service (apps/v1 has no upstream schema here):
selectors match the pod labels, every mount has its volume, the node plugin gets the host paths,
identity and scheduling it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dra_driver.core.discovery.mock import MockBackend
from tests.unit.deploy.chart import (
    DEMO_INVENTORY,
    NAMESPACE,
    RELEASE,
    VARIANTS,
    Obj,
    container,
    one,
    one_mount,
    render,
)

PLUGIN_HOST_PATHS = {
    "/var/lib/kubelet/plugins_registry",
    "/var/lib/kubelet/plugins/xpushare.io",
    "/var/run/cdi",
    "/dev",
    "/var/lib/xpushare",
    "/var/lib/xpushare/shim",
    "/var/run/xpushare",
}
ASCEND_HOST_PATHS = {"/usr/local/Ascend/driver", "/usr/local/dcmi", "/etc/ascend_install.info"}


def _host_paths(workload: Obj) -> dict[str, str]:
    return {
        v["hostPath"]["path"]: v["hostPath"].get("type", "")
        for v in workload["spec"]["template"]["spec"]["volumes"]
        if "hostPath" in v
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kind", ["DaemonSet", "Deployment"])
def test_selectors_match_pod_labels_and_mounts_have_volumes(variant: str, kind: str) -> None:
    workload = one(render(VARIANTS[variant]), kind)
    labels = workload["spec"]["template"]["metadata"]["labels"]
    selector = workload["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert "app.kubernetes.io/component" in selector
    pod = workload["spec"]["template"]["spec"]
    volumes = [v["name"] for v in pod.get("volumes", [])]
    assert len(volumes) == len(set(volumes)), "duplicate volume names"
    for item in pod.get("initContainers", []) + pod["containers"]:
        for mount in item.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{item['name']} mounts missing volume {mount['name']}"
    accounts = {o["metadata"]["name"] for o in render(VARIANTS[variant]) if o["kind"] == "ServiceAccount"}
    assert pod["serviceAccountName"] in accounts


def test_plugin_and_controller_select_different_pods() -> None:
    objects = render()
    plugin = one(objects, "DaemonSet")["spec"]["selector"]["matchLabels"]
    controller = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not plugin.items() <= controller.items()


def test_plugin_mounts_the_kubelet_cdi_device_shim_and_ascend_paths() -> None:
    daemonset = one(render(), "DaemonSet")
    paths = _host_paths(daemonset)
    assert paths.keys() >= PLUGIN_HOST_PATHS | ASCEND_HOST_PATHS
    # Vendor files must exist: a missing one is an error, never an empty stand-in created on the host.
    assert paths["/etc/ascend_install.info"] == "File"
    assert paths["/usr/local/Ascend/driver"] == "Directory"
    assert paths["/var/lib/kubelet/plugins_registry"] == "Directory"


def test_nvidia_mounts_each_driver_library_and_points_nvml_at_it() -> None:
    daemonset = one(render(VARIANTS["nvidia"]), "DaemonSet")
    paths = _host_paths(daemonset)
    assert paths["/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"] == "File"
    assert paths["/usr/lib/x86_64-linux-gnu/libcuda.so.1"] == "File"
    assert paths["/usr/bin/nvidia-smi"] == "File"
    assert ASCEND_HOST_PATHS.isdisjoint(paths)
    env = {e["name"]: e.get("value") for e in container(daemonset, "plugin")["env"]}
    assert env["XPUSHARE_NVML_LIBRARY"] == "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"


def test_mock_backend_mounts_no_vendor_files_and_reads_its_inventory_configmap(tmp_path: Path) -> None:
    objects = render(VARIANTS["mock"])
    daemonset = one(objects, "DaemonSet")
    paths = _host_paths(daemonset)
    assert ASCEND_HOST_PATHS.isdisjoint(paths)
    configmap = one(objects, "ConfigMap")
    volume = [v for v in daemonset["spec"]["template"]["spec"]["volumes"] if v["name"] == "inventory"]
    assert volume[0]["configMap"]["name"] == configmap["metadata"]["name"]
    # The plugin reads the mounted file with the mock backend: it must come through the ConfigMap intact.
    mount = one_mount(container(daemonset, "plugin"), "inventory")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(configmap["data"]["inventory.yaml"])
    devices = MockBackend(inventory).discover()
    assert [d.uuid for d in devices] == [d.uuid for d in MockBackend(DEMO_INVENTORY).discover()]
    assert f"--inventory={mount}/inventory.yaml" in container(daemonset, "plugin")["args"]


def test_plugin_runs_node_critical_with_its_node_name() -> None:
    daemonset = one(render(), "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-node-critical"
    plugin = container(daemonset, "plugin")
    node_name = [e for e in plugin["env"] if e["name"] == "NODE_NAME"]
    assert node_name[0]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert plugin["securityContext"] == {"privileged": True}


def test_unprivileged_plugin_gets_the_configured_capabilities_only() -> None:
    daemonset = one(render({"kubeletPlugin": {"privileged": False}}), "DaemonSet")
    context = container(daemonset, "plugin")["securityContext"]
    assert "privileged" not in context
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize(
    ("values", "key", "expected"),
    [
        (
            {"kubeletPlugin": {"nodeSelector": {"accelerator": "ascend"}}},
            "nodeSelector",
            {"accelerator": "ascend"},
        ),
        (
            {"kubeletPlugin": {"tolerations": [{"key": "npu", "operator": "Exists"}]}},
            "tolerations",
            [{"key": "npu", "operator": "Exists"}],
        ),
        ({"kubeletPlugin": {"affinity": {"nodeAffinity": {}}}}, "affinity", {"nodeAffinity": {}}),
    ],
)
def test_plugin_scheduling_comes_from_values(values: dict[str, Any], key: str, expected: Any) -> None:
    assert one(render(values), "DaemonSet")["spec"]["template"]["spec"][key] == expected


def test_shim_is_copied_to_the_host_by_an_init_container() -> None:
    daemonset = one(render(), "DaemonSet")
    init = container(daemonset, "install-shim")
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env == {
        "SHIM_SOURCE": "/usr/local/lib/xpushare/libxpushare.so",
        "SHIM_TARGET": "/var/lib/xpushare/shim/libxpushare.so",
    }
    # Written under a temporary name, then renamed: running containers keep the file they mapped.
    script = init["args"][0]
    assert script.index('"$SHIM_TARGET.tmp"') < script.index('mv -f "$SHIM_TARGET.tmp" "$SHIM_TARGET"')
    assert [m["mountPath"] for m in init["volumeMounts"]] == ["/var/lib/xpushare/shim"]
    plugin_mounts = {m["mountPath"]: m for m in container(daemonset, "plugin")["volumeMounts"]}
    assert plugin_mounts["/var/lib/xpushare/shim"].get("readOnly") is True


def test_controller_runs_two_replicas_unprivileged_with_a_ready_probe() -> None:
    deployment = one(render(), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    controller = container(deployment, "controller")
    assert controller["securityContext"]["readOnlyRootFilesystem"] is True
    assert controller["readinessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "webhook",
        "scheme": "HTTPS",
    }
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in controller["env"] if "valueFrom" in e}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


def test_webhook_service_reaches_the_controller_port() -> None:
    objects = render()
    service = one(objects, "Service")
    deployment = one(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"] for p in container(deployment, "controller")["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in ports
    assert service["metadata"] == service["metadata"] | {"name": f"{RELEASE}-webhook", "namespace": NAMESPACE}
