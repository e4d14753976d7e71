"""What a live quota change may ask for: the annotation's format and the bounds of the allocation."""

from __future__ import annotations

import pytest

from api.errors import ConfigError
from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import DeviceType
from kubeletplugin.checkpoint import ClaimState, PreparedClaim, PreparedDevice
from kubeletplugin.quota import QuotaError, QuotaRequest, parse_annotation, parse_memory, validate

GIB = 1 << 30


def _claim(*devices: tuple[str, int, int], priority: Priority = Priority.NORMAL,
           policy: ComputePolicy = ComputePolicy.GUARANTEED) -> PreparedClaim:
    prepared = tuple(
        PreparedDevice(pool="node", device=name, request_names=("r",), cdi_device_ids=("k=v",),
                       uuid=f"UUID-{name}", index=i, device_type=DeviceType.GPU, memory_bytes=memory,
                       core_percent=cores, priority=priority, policy=policy)
        for i, (name, memory, cores) in enumerate(devices)
    )
    return PreparedClaim(uid="uid-1", namespace="ns", name="c", state=ClaimState.PREPARE_COMPLETED,
                         devices=prepared)


def test_memory_quantities_are_bytes() -> None:
    assert parse_memory("8Gi") == 8 * GIB
    assert parse_memory("512Mi") == 512 << 20
    assert parse_memory("1000") == 1000
    for bad in ("0", "-1Gi", "1.5", "lots"):
        with pytest.raises(ConfigError, match="memory"):
            parse_memory(bad)


def test_the_annotation_names_memory_cores_and_device() -> None:
    assert parse_annotation("memory=8Gi, cores=30") == QuotaRequest(8 * GIB, 30, None)
    assert parse_annotation("cores=0,device=gpu-1") == QuotaRequest(None, 0, "gpu-1")
    with pytest.raises(ConfigError, match=r"'speed=2' must be memory=<quantity>, cores=<0-100>"):
        parse_annotation("speed=2")
    with pytest.raises(ConfigError, match=r"cores '3\.5' must be an integer in \[0, 100\]"):
        parse_annotation("cores=3.5")


def test_changes_stay_within_each_devices_allocation() -> None:
    claim = _claim(("gpu-0", 16 * GIB, 50), ("gpu-1", 8 * GIB, 30))
    assert [d.device for d in validate(claim, QuotaRequest(8 * GIB, 30))] == ["gpu-0", "gpu-1"]
    assert [d.device for d in validate(claim, QuotaRequest(16 * GIB, None, "gpu-0"))] == ["gpu-0"]
    with pytest.raises(ConfigError, match=r"memory: 17179869184 bytes on device gpu-1 .* 1\.\.8589934592"):
        validate(claim, QuotaRequest(16 * GIB))  # fits gpu-0, not gpu-1
    with pytest.raises(ConfigError, match=r"cores: 40% on device gpu-1 is outside the allocated range 0..30"):
        validate(claim, QuotaRequest(None, 40))
    with pytest.raises(ConfigError, match="give memory, cores, priority and/or policy"):
        validate(claim, QuotaRequest())
    with pytest.raises(QuotaError, match=r"device: 'UUID-x' is not a device of claim uid-1; its devices: "):
        validate(claim, QuotaRequest(None, 10, "UUID-x"))


def test_the_annotation_names_priority_and_policy() -> None:
    assert parse_annotation("priority=low, policy=fixed") == QuotaRequest(
        priority=Priority.LOW, policy=ComputePolicy.FIXED)
    with pytest.raises(ConfigError, match=r"priority: 'urgent' must be one of low, normal, high"):
        parse_annotation("priority=urgent")
    with pytest.raises(ConfigError, match=r"policy: 'loose' must be one of guaranteed, fixed"):
        parse_annotation("policy=loose")


def test_priority_and_policy_may_be_made_stricter_never_looser_than_allocated() -> None:
    normal = _claim(("gpu-0", GIB, 50))
    assert validate(normal, QuotaRequest(priority=Priority.LOW))  # lowered: fine
    assert validate(normal, QuotaRequest(policy=ComputePolicy.FIXED))  # capped: fine
    with pytest.raises(ConfigError, match=r"priority: high on device gpu-0 is above the allocated normal "
                                          r"\(allowed: low, normal\)"):
        validate(normal, QuotaRequest(priority=Priority.HIGH))
    fixed = _claim(("gpu-0", GIB, 50), policy=ComputePolicy.FIXED)
    with pytest.raises(ConfigError, match=r"policy: guaranteed on device gpu-0 was not allocated"):
        validate(fixed, QuotaRequest(policy=ComputePolicy.GUARANTEED))
