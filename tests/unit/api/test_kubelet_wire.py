"""Every message of every kubelet proto decodes bytes written by hand from DESIGN's field numbers.

The kubelet is Go code we cannot run here; what it puts on the wire is fixed by field numbers and types,
so bytes built field by field (see ``wire.py``) stand in for it. A wrong number or type in a .proto file
makes the decoded message differ from the expected one.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from api.kubelet import (
    dra_v1_pb2,
    dra_v1beta1_pb2,
    health_v1alpha1_pb2,
    registration_pb2,
)
from tests.unit.api.wire import embedded, map_entry, number, text

CLAIM = text(1, "team-a") + text(2, "uid-1") + text(3, "shared-npu")
CLAIM_DICT = {"namespace": "team-a", "uid": "uid-1", "name": "shared-npu"}
DEVICE = (text(1, "npu") + text(1, "npu-extra") + text(2, "node-a") + text(3, "npu-0")
          + text(4, "xpushare.io/claim=uid-1-npu-0") + text(4, "xpushare.io/shim=uid-1"))
DEVICE_DICT = {"request_names": ["npu", "npu-extra"], "pool_name": "node-a", "device_name": "npu-0",
               "cdi_device_ids": ["xpushare.io/claim=uid-1-npu-0", "xpushare.io/shim=uid-1"]}
PREPARED = embedded(1, DEVICE) + text(2, "")
UNPREPARED = text(1, "checkpoint write failed")


def dra_cases(module: ModuleType) -> list[Any]:
    version = module.DESCRIPTOR.package.rsplit(".", 1)[1]
    cases = {
        "Claim": (CLAIM, CLAIM_DICT),
        "Device": (DEVICE, DEVICE_DICT),
        "NodePrepareResourcesRequest": (embedded(1, CLAIM) + embedded(1, text(2, "uid-2")),
                                        {"claims": [CLAIM_DICT, {"uid": "uid-2"}]}),
        "NodePrepareResourceResponse": (PREPARED + text(2, "no such device"),
                                        {"devices": [DEVICE_DICT], "error": "no such device"}),
        "NodePrepareResourcesResponse": (
            map_entry(1, "uid-1", PREPARED) + map_entry(1, "uid-2", text(2, "claim not allocated here")),
            {"claims": {"uid-1": {"devices": [DEVICE_DICT]},
                        "uid-2": {"error": "claim not allocated here"}}}),
        "NodeUnprepareResourcesRequest": (embedded(1, CLAIM), {"claims": [CLAIM_DICT]}),
        "NodeUnprepareResourceResponse": (UNPREPARED, {"error": "checkpoint write failed"}),
        "NodeUnprepareResourcesResponse": (
            map_entry(1, "uid-1", b"") + map_entry(1, "uid-2", UNPREPARED),
            {"claims": {"uid-1": {}, "uid-2": {"error": "checkpoint write failed"}}}),
    }
    return [pytest.param(module, name, raw, expected, id=f"dra {version} {name}")
            for name, (raw, expected) in cases.items()]


IDENTIFIER = text(1, "node-a") + text(2, "npu-3")
HEALTH = (embedded(1, IDENTIFIER) + number(2, 2) + number(3, 1_763_683_200) + number(4, 30)
          + text(5, "ECC errors"))
HEALTH_DICT = {"device": {"pool_name": "node-a", "device_name": "npu-3"}, "health": "UNHEALTHY",
               "last_updated_time": "1763683200", "health_check_timeout_seconds": "30",
               "message": "ECC errors"}

OTHER_CASES = [
    pytest.param(health_v1alpha1_pb2, "NodeWatchResourcesRequest", b"", {},
                 id="health NodeWatchResourcesRequest"),
    pytest.param(health_v1alpha1_pb2, "DeviceIdentifier", IDENTIFIER,
                 {"pool_name": "node-a", "device_name": "npu-3"}, id="health DeviceIdentifier"),
    pytest.param(health_v1alpha1_pb2, "DeviceHealth", HEALTH, HEALTH_DICT, id="health DeviceHealth"),
    pytest.param(health_v1alpha1_pb2, "DeviceHealth", number(2, 1) + number(4, -1),
                 {"health": "HEALTHY", "health_check_timeout_seconds": "-1"}, id="health negative int64"),
    pytest.param(health_v1alpha1_pb2, "NodeWatchResourcesResponse",
                 embedded(1, HEALTH) + embedded(1, embedded(1, text(2, "npu-4")) + number(2, 1)),
                 {"devices": [HEALTH_DICT, {"device": {"device_name": "npu-4"}, "health": "HEALTHY"}]},
                 id="health NodeWatchResourcesResponse"),
    pytest.param(registration_pb2, "InfoRequest", b"", {}, id="registration InfoRequest"),
    pytest.param(registration_pb2, "PluginInfo",
                 text(1, "DRAPlugin") + text(2, "xpushare.io") + text(3, "/plugins/x/dra.sock")
                 + text(4, "v1.DRAPlugin") + text(4, "v1beta1.DRAPlugin"),
                 {"type": "DRAPlugin", "name": "xpushare.io", "endpoint": "/plugins/x/dra.sock",
                  "supported_versions": ["v1.DRAPlugin", "v1beta1.DRAPlugin"]}, id="registration PluginInfo"),
    pytest.param(registration_pb2, "RegistrationStatus", number(1, 1) + text(2, "driver name taken"),
                 {"plugin_registered": True, "error": "driver name taken"},
                 id="registration RegistrationStatus"),
    pytest.param(registration_pb2, "RegistrationStatusResponse", b"", {},
                 id="registration RegistrationStatusResponse"),
]
CASES = dra_cases(dra_v1_pb2) + dra_cases(dra_v1beta1_pb2) + OTHER_CASES


def decode(module: ModuleType, name: str, raw: bytes) -> Message:
    message: Message = getattr(module, name)()
    message.ParseFromString(raw)
    return message


@pytest.mark.parametrize(("module", "name", "raw", "expected"), CASES)
def test_hand_written_bytes_decode_to_the_expected_fields(
    module: ModuleType, name: str, raw: bytes, expected: dict[str, Any]
) -> None:
    message = decode(module, name, raw)
    assert MessageToDict(message, preserving_proto_field_name=True) == expected
    assert len(UnknownFieldSet(message)) == 0  # every field was known: numbers and wire types match


@pytest.mark.parametrize("module", [dra_v1_pb2, dra_v1beta1_pb2, health_v1alpha1_pb2, registration_pb2])
def test_every_message_of_every_proto_has_a_wire_case(module: ModuleType) -> None:
    covered = {values[1] for values in (case.values for case in CASES) if values[0] is module}
    assert covered == set(module.DESCRIPTOR.message_types_by_name)


@pytest.mark.parametrize(("name", "raw"), [("Claim", CLAIM), ("Device", DEVICE),
                                           ("NodeUnprepareResourceResponse", UNPREPARED)])
def test_we_write_the_bytes_the_kubelet_expects(name: str, raw: bytes) -> None:
    """Encoding is deterministic in field order, so what we send must equal the hand-built bytes."""
    assert decode(dra_v1_pb2, name, raw).SerializeToString() == raw


def test_v1_share_id_has_presence_even_when_empty() -> None:
    assert not decode(dra_v1_pb2, "Device", DEVICE).HasField("share_id")
    with_share = decode(dra_v1_pb2, "Device", DEVICE + text(5, ""))
    assert with_share.HasField("share_id")
    assert with_share.SerializeToString() == DEVICE + b"\x2a\x00"
    assert decode(dra_v1_pb2, "Device", text(5, "share-7")).share_id == "share-7"  # type: ignore[attr-defined]


def test_v1beta1_has_no_share_id_and_keeps_it_as_unknown_bytes() -> None:
    assert "share_id" not in dra_v1beta1_pb2.Device.DESCRIPTOR.fields_by_name
    device = decode(dra_v1beta1_pb2, "Device", DEVICE + text(5, "share-7"))
    assert MessageToDict(device, preserving_proto_field_name=True) == DEVICE_DICT
    unknown = UnknownFieldSet(device)
    assert [unknown[i].field_number for i in range(len(unknown))] == [5]
    assert device.SerializeToString() == DEVICE + text(5, "share-7")


def test_health_status_numbers() -> None:
    status = health_v1alpha1_pb2.HealthStatus
    assert (status.Value("UNKNOWN"), status.Value("HEALTHY"), status.Value("UNHEALTHY")) == (0, 1, 2)
    assert len(status.keys()) == 3


def test_proto_packages_are_the_kubelets() -> None:
    modules = (dra_v1_pb2, dra_v1beta1_pb2, health_v1alpha1_pb2, registration_pb2)
    assert [module.DESCRIPTOR.package for module in modules] == [
        "k8s.io.kubelet.pkg.apis.dra.v1", "k8s.io.kubelet.pkg.apis.dra.v1beta1", "v1alpha1",
        "pluginregistration"]
