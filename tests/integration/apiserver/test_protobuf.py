"""kubectl's typed generators send protobuf: Namespaces decode, anything else is a clear 415."""

from __future__ import annotations

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import rawhttp

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def _envelope(api_version: str, kind: str, obj: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, obj) + _field(4, PROTOBUF.encode())


def test_a_protobuf_namespace_is_created(apiserver: ApiServer) -> None:
    label = _field(1, b"team") + _field(2, b"a")
    metadata = _field(1, b"team-a") + _field(11, label)
    body = _envelope("v1", "Namespace", _field(1, metadata))
    status, created, _ = rawhttp.request(apiserver, "POST", "/api/v1/namespaces", body, content_type=PROTOBUF)
    assert status == 201
    assert created["metadata"]["name"] == "team-a"
    assert created["metadata"]["labels"]["team"] == "a"


def test_other_protobuf_bodies_are_a_415(apiserver: ApiServer) -> None:
    pod = _envelope("v1", "Pod", _field(1, _field(1, b"p1")))
    status, result, _ = rawhttp.request(apiserver, "POST", "/api/v1/namespaces/default/pods", pod,
                                        content_type=PROTOBUF)
    assert status == 415
    assert "send application/json" in result["message"]
    status, _, _ = rawhttp.request(apiserver, "POST", "/api/v1/namespaces", b"k8s\x00\xff\xff",
                                   content_type=PROTOBUF)
    assert status == 415
