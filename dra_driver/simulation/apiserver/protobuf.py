"""Just enough of Kubernetes' protobuf encoding for kubectl's typed generators that create Namespaces.

``kubectl create namespace NAME`` sends ``application/vnd.kubernetes.protobuf`` (a ``k8s\\0`` magic, then
a runtime.Unknown envelope holding the object in the generated.proto encoding), never JSON. Decoding the
metadata of a Namespace covers that command; every other kind and anything not understood is a 415 that
says to send JSON (kubectl apply does), as the server serves no other protobuf.
"""

from __future__ import annotations

from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.status import StatusError

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"
# generated.proto field numbers (k8s.io/apimachinery/pkg/apis/meta/v1, k8s.io/api/core/v1)
_META_STRINGS = {1: "name", 2: "generateName", 3: "namespace"}
_META_MAPS = {11: "labels", 12: "annotations"}
_META_FINALIZERS = 14


class _ProtoError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _ProtoError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited fields."""
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _ProtoError("truncated field")
            value, pos = data[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            raise _ProtoError(f"unsupported wire type {wire}")
        out.append((number, value))
    return out


def _metadata(data: bytes) -> Obj:
    meta: Obj = {}
    for number, value in fields(data):
        if number in _META_STRINGS:
            meta[_META_STRINGS[number]] = value.decode()
        elif number in _META_MAPS:
            entry = dict(fields(value))
            meta.setdefault(_META_MAPS[number], {})[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
        elif number == _META_FINALIZERS:
            meta.setdefault("finalizers", []).append(value.decode())
    return meta


def decode(body: bytes) -> Obj:
    """The JSON form of a protobuf-encoded Namespace; a 415 for anything else."""
    try:
        if not body.startswith(_MAGIC):
            raise _ProtoError("missing the k8s protobuf magic")
        envelope = dict(fields(body[len(_MAGIC):]))
        type_meta = {n: v.decode() for n, v in fields(envelope.get(1, b""))}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        if (api_version, kind) != ("v1", "Namespace"):
            raise _ProtoError(f"{kind or 'this kind'} in {api_version or 'this version'}")
        obj: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}
        for number, value in fields(envelope.get(2, b"")):
            if number == 1:
                obj["metadata"] = _metadata(value)
        return obj
    except (_ProtoError, UnicodeDecodeError, AttributeError) as err:
        raise StatusError(415, "UnsupportedMediaType", f"protobuf bodies are understood for Namespaces only "
                       f"({err}); send application/json instead (kubectl apply does)") from err
