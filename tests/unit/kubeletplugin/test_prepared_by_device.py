"""Which claims each physical device holds, as the metrics and the usage sampler read their ledgers."""

from __future__ import annotations

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import DeviceType
from kubeletplugin.checkpoint import ClaimState, PreparedClaim, PreparedDevice
from kubeletplugin.physical import prepared_by_device


def part(name: str, uuid: str) -> PreparedDevice:
    return PreparedDevice("node", name, ("r",), (), uuid, 0, DeviceType.GPU, 1 << 30, 25,
                          Priority.NORMAL, ComputePolicy.GUARANTEED)


def prepared(
    uid: str, *devices: PreparedDevice, state: ClaimState = ClaimState.PREPARE_COMPLETED
) -> PreparedClaim:
    return PreparedClaim(uid, "default", uid, state, devices)


def test_two_parts_of_one_device_are_one_entry_and_unfinished_claims_are_left_out() -> None:
    claims = {
        "b": prepared(
            "b", part("gpu-0-1of4-0", "GPU-0"), part("gpu-0-1of4-1", "GPU-0"), part("gpu-1", "GPU-1")
        ),
        "a": prepared("a", part("gpu-0-1of4-2", "GPU-0")),
        "c": prepared("c", part("gpu-1", "GPU-1"), state=ClaimState.PREPARE_STARTED),
    }
    assert prepared_by_device(claims) == {"GPU-0": ["a", "b"], "GPU-1": ["b"]}
