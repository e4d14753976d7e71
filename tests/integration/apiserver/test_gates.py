"""Disabled feature gates: their fields are dropped silently on write, like a real API server does."""

from __future__ import annotations

import pytest
from kubernetes import client

from api.errors import ConfigError
from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects
from tests.support.apiserver import api_client


def _rich_slice() -> dict[str, object]:
    body = objects.resource_slice("s1", "n1")
    device = body["spec"]["devices"][0]
    device["allowMultipleAllocations"] = True
    device["capacity"]["memory"]["requestPolicy"] = {"default": "64Gi", "validRange": {
        "min": "256Mi", "step": "256Mi"}}
    device["taints"] = [{"key": "xpushare.io/unhealthy", "effect": "NoSchedule"}]
    device["consumesCounters"] = [{"counterSet": "npu-0", "counters": {"memory": {"value": "64Gi"}}}]
    return body


def _write_and_read(server: ApiServer) -> tuple[dict[str, object], client.ResourceV1ResourceClaim]:
    with api_client(server) as api:
        res = client.ResourceV1Api(api)
        created = res.create_resource_slice(_rich_slice())
        device = client.ApiClient().sanitize_for_serialization(created)["spec"]["devices"][0]
        res.create_namespaced_resource_claim("default", objects.claim("c1", capacity={"memory": "16Gi"}))
        res.patch_namespaced_resource_claim_status("c1", "default",
                                                   {"status": objects.allocation_status("n1", "npu-0")})
        return device, res.read_namespaced_resource_claim("c1", "default")


def test_all_gates_on_keeps_every_field() -> None:
    with ApiServer() as server:
        device, claim = _write_and_read(server)
    assert device["allowMultipleAllocations"] is True
    assert "requestPolicy" in device["capacity"]["memory"]
    assert device["taints"]
    assert device["consumesCounters"]
    assert claim.spec.devices.requests[0].exactly.capacity.requests == {"memory": "16Gi"}
    assert claim.status.allocation.devices.results[0].share_id is not None


def test_consumable_capacity_off_drops_its_fields_only() -> None:
    with ApiServer(disabled_gates=["DRAConsumableCapacity"]) as server:
        device, claim = _write_and_read(server)
    assert "allowMultipleAllocations" not in device
    assert "requestPolicy" not in device["capacity"]["memory"]
    assert device["taints"]
    assert device["consumesCounters"]
    assert claim.spec.devices.requests[0].exactly.capacity is None
    result = claim.status.allocation.devices.results[0]
    assert result.share_id is None
    assert result.consumed_capacity is None
    assert result.device == "npu-0"


def test_partitionable_and_taint_gates_off_drop_counters_and_taints() -> None:
    with ApiServer(disabled_gates=["DRAPartitionableDevices", "DRADeviceTaints"]) as server:
        device, _ = _write_and_read(server)
    assert "consumesCounters" not in device
    assert "taints" not in device
    assert device["allowMultipleAllocations"] is True


def test_an_unknown_gate_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DRANoSuchGate"):
        ApiServer(disabled_gates=["DRANoSuchGate"])
