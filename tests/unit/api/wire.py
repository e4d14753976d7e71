"""A hand encoder for the protobuf wire format, so tests can build the kubelet's bytes without protobuf.

Decoding these bytes with our generated classes proves wire compatibility with any peer (the kubelet's
Go code) that follows the same field numbers and types; a round trip through our own classes would not.
"""

from __future__ import annotations

VARINT, LENGTH_DELIMITED = 0, 2


def varint(value: int) -> bytes:
    """Base-128 varint; negative values take ten bytes, as int64 two's complement does on the wire."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def number(field: int, value: int) -> bytes:
    """An int64, bool or enum field."""
    return tag(field, VARINT) + varint(value)


def embedded(field: int, payload: bytes) -> bytes:
    """A message, bytes or map-entry field: tag, length, payload."""
    return tag(field, LENGTH_DELIMITED) + varint(len(payload)) + payload


def text(field: int, value: str) -> bytes:
    return embedded(field, value.encode("utf-8"))


def map_entry(field: int, key: str, value: bytes) -> bytes:
    """One entry of a ``map<string, Message>``: an embedded message with key = 1 and value = 2."""
    return embedded(field, text(1, key) + embedded(2, value))
