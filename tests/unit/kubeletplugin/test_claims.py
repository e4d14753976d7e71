"""Reading a claim: only our driver's results on this node, with errors that name the claim and the reason."""

from __future__ import annotations

import pytest

from kubeletplugin.claims import ClaimError, parse_claim
from tests.support.plugin_claims import DRIVER, NODE, claim, opaque, result, shared, sharing


def _parse(obj: dict, uid: str | None = None):  # type: ignore[no-untyped-def,type-arg]
    return parse_claim(obj, uid=uid or obj["metadata"]["uid"], driver=DRIVER, pool=NODE)


def test_results_of_other_drivers_and_their_configs_are_ignored() -> None:
    obj = claim(
        results=[result("npu-0", request="req/small"), result("nic-0", driver="net.example.com", pool="x")],
        configs=[opaque(sharing(priority="high")), opaque({"foo": 1}, driver="net.example.com")],
    )
    parsed = _parse(obj)
    assert [(r.device, r.request_name) for r in parsed.results] == [("npu-0", "req")]
    assert len(parsed.configs) == 1


def test_consumed_capacity_is_read_as_bytes_and_percent() -> None:
    parsed = _parse(claim(results=[shared("npu-0", memory="16Gi", cores="25")]))
    consumed = parsed.results[0].consumed
    assert consumed is not None
    assert (consumed.memory_bytes, consumed.core_percent) == (16 << 30, 25)
    assert parsed.results[0].share_id


def test_class_configs_come_before_claim_configs() -> None:
    obj = claim(
        results=[result("npu-0")],
        configs=[opaque(sharing(priority="low")), opaque(sharing(priority="high"), source="FromClass")],
    )
    assert [c.from_class for c in _parse(obj).configs] == [True, False]


@pytest.mark.parametrize(
    ("obj_kwargs", "uid", "message"),
    [
        ({"results": None}, None, "not allocated"),
        ({"results": [result("nic-0", driver="net.example.com")]}, None, "no device of driver xpushare.io"),
        (
            {"results": [result("npu-0", pool="node-b")]},
            None,
            "allocated on pool\\(s\\) node-b.*serves pool node-a",
        ),
        ({"results": [result("npu-0")]}, "old-uid", "re-created"),
        ({"results": [result("npu-0", consumed={"memory": "lots"})]}, None, "not a quantity"),
        ({"results": [result("npu-0", consumed={"cores": "12.5"})]}, None, "whole number"),
        ({"results": [result("npu-0", consumed={"memory": "-1Gi"})]}, None, "negative"),
    ],
    ids=[
        "not allocated",
        "another driver",
        "another node",
        "replaced uid",
        "bad quantity",
        "fractional cores",
        "negative memory",
    ],
)
def test_bad_claims_are_refused_with_the_claim_and_reason(
    obj_kwargs: dict, uid: str | None, message: str
) -> None:  # type: ignore[type-arg]
    obj = claim(name="bad", **obj_kwargs)
    with pytest.raises(ClaimError, match=message) as caught:
        _parse(obj, uid)
    assert "claim default/bad" in str(caught.value)
