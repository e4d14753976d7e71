"""The hand encoder itself, checked against bytes from the protobuf encoding guide."""

from tests.unit.api.wire import embedded, map_entry, number, text, varint


def test_varints_match_the_encoding_guide() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(150) == b"\x96\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_fields_are_tag_then_value() -> None:
    assert number(1, 150) == b"\x08\x96\x01"
    assert text(2, "testing") == b"\x12\x07testing"
    assert embedded(3, b"\x08\x96\x01") == b"\x1a\x03\x08\x96\x01"
    assert map_entry(1, "k", b"") == b"\x0a\x05\x0a\x01k\x12\x00"
