"""The plugin as the kubelet sees it: registration, then prepare/unprepare over the real DRA socket, with
claims allocated by the scheduler stand-in against the slices the plugin published."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from kubernetes import client

from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin import cdi
from kubeletplugin.plugin import Plugin
from shim.limits import read_limits_file
from tests.integration.kubeletplugin.conftest import NODE, Allocate, ref
from tests.support.cdi_schema import validate_cdi_spec


def test_plugin_registers_with_both_dra_versions_and_health_and_sockets_are_0600(
    plugin: Plugin, kubelet: KubeletClient
) -> None:
    assert kubelet.info is not None
    assert (kubelet.info.type, kubelet.info.name) == ("DRAPlugin", "xpushare.io")
    assert list(kubelet.info.supported_versions) == [
        "v1.DRAPlugin",
        "v1beta1.DRAPlugin",
        "v1alpha1.DRAResourceHealth",
    ]
    assert kubelet.info.endpoint == str(plugin.settings.dra_socket)
    assert plugin.registration is not None
    assert plugin.registration.registered.wait(5)
    for socket in (plugin.settings.dra_socket, plugin.settings.registration_socket):
        assert stat.S_ISSOCK(socket.stat().st_mode)
        assert stat.S_IMODE(socket.stat().st_mode) == 0o600


def test_plugin_publishes_its_pool(plugin: Plugin, kube_client: client.ApiClient) -> None:
    slices = (
        client.ResourceV1Api(kube_client).list_resource_slice(field_selector=f"spec.nodeName={NODE}").items
    )
    names = {d.name for s in slices for d in (s.spec.devices or [])}
    assert {"npu-0", "npu-1", "gpu-0"} <= names
    assert {s.spec.pool.name for s in slices} == {NODE}


def test_claim_allocated_by_the_scheduler_is_prepared_and_unprepared_v1(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, schemas_dir: Path
) -> None:
    claim = allocate("train", memory="16Gi", cores="25")
    result = claim["status"]["allocation"]["devices"]["results"][0]
    uid = claim["metadata"]["uid"]

    response = kubelet.prepare([ref(claim)], version="v1")

    assert list(response.claims) == [uid]
    answer = response.claims[uid]
    assert answer.error == ""
    (device,) = answer.devices
    assert (device.pool_name, device.device_name) == (NODE, result["device"])
    assert list(device.request_names) == ["npu"]
    assert device.share_id == result["shareID"]
    assert list(device.cdi_device_ids) == [f"xpushare.io/claim={uid}-{result['device']}"]
    spec = json.loads(cdi.spec_path(plugin.settings.cdi_dir, uid).read_text())
    validate_cdi_spec(spec, schemas_dir)
    assert spec["cdiVersion"] == "0.5.0"
    limits = read_limits_file(plugin.settings.paths.limits_file(uid))
    assert [(d.memory_limit_bytes, d.core_percent) for d in limits.devices] == [(16 << 30, 25)]

    again = kubelet.prepare([ref(claim)], version="v1")
    assert again.claims[uid] == answer  # idempotent

    unprepared = kubelet.unprepare([ref(claim)], version="v1")
    assert unprepared.claims[uid].error == ""
    assert not cdi.spec_path(plugin.settings.cdi_dir, uid).exists()
    assert not plugin.settings.paths.limits_file(uid).exists()
    assert kubelet.unprepare([ref(claim)]).claims[uid].error == ""


def test_v1beta1_serves_the_same_without_share_id(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate
) -> None:
    claim = allocate("beta", memory="8Gi", cores="10")
    uid = claim["metadata"]["uid"]
    response = kubelet.prepare([ref(claim)], version="v1beta1")
    (device,) = response.claims[uid].devices
    assert response.claims[uid].error == ""
    assert not hasattr(device, "share_id")
    assert device.cdi_device_ids[0].startswith("xpushare.io/claim=")
    assert kubelet.unprepare([ref(claim)], version="v1beta1").claims[uid].error == ""


def test_sharing_config_of_the_claim_reaches_the_limits_file(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate
) -> None:
    config = [
        {
            "opaque": {
                "driver": "xpushare.io",
                "parameters": {
                    "apiVersion": "xpushare.io/v1alpha1",
                    "kind": "SharingConfig",
                    "priority": "high",
                    "computePolicy": "fixed",
                },
            }
        }
    ]
    claim = allocate("hi", memory="4Gi", cores="50", config=config)
    uid = claim["metadata"]["uid"]
    assert kubelet.prepare([ref(claim)]).claims[uid].error == ""
    (entry,) = read_limits_file(plugin.settings.paths.limits_file(uid)).devices
    assert (entry.priority, entry.policy, entry.core_percent) == ("high", "fixed", 50)


def test_two_claims_in_one_call_share_a_device(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate
) -> None:
    first, second = allocate("one", memory="30Gi", cores="40"), allocate("two", memory="30Gi", cores="40")
    response = kubelet.prepare([ref(first), ref(second)])
    assert {uid: c.error for uid, c in response.claims.items()} == {
        first["metadata"]["uid"]: "",
        second["metadata"]["uid"]: "",
    }
