"""The Event that tells a user which partition a claim got when its request named no size."""

from __future__ import annotations

from typing import Any

import pytest

from kubeletplugin.limits import Catalog
from kubeletplugin.sizes import unsized_partitions
from tests.support.plugin_claims import DRIVER, NODE, claim, npu, result, shared

CATALOG = Catalog([npu(0), npu(1)])
BY_CAPACITY = 'device.capacity["xpushare.io"].memory.compareTo(quantity("16Gi")) >= 0'
BY_PARTITION = 'device.attributes["xpushare.io"].partition == "1/4"'


def with_selector(obj: dict[str, Any], expression: str) -> dict[str, Any]:
    obj["spec"]["devices"]["requests"][0]["exactly"]["selectors"] = [{"cel": {"expression": expression}}]
    return obj


def test_a_partition_given_to_a_request_without_a_size_is_named_with_its_size() -> None:
    (message,) = unsized_partitions(claim(results=[result("npu-1-1of4-2")]), CATALOG, DRIVER, NODE)
    assert message.startswith("request req: given partition npu-1-1of4-2 (16Gi, 25 % of the device's cores)")
    assert "DRAConsumableCapacity drop capacity.requests" in message
    assert "docs/configuration.md" in message


@pytest.mark.parametrize("expression", [BY_CAPACITY, BY_PARTITION])
def test_a_request_that_chose_its_size_gets_no_notice(expression: str) -> None:
    obj = with_selector(claim(results=[result("npu-1-1of4-2")]), expression)
    assert unsized_partitions(obj, CATALOG, DRIVER, NODE) == []


def test_a_selector_on_something_else_still_names_no_size() -> None:
    other = 'device.attributes["xpushare.io"].index == 0'
    obj = with_selector(claim(results=[result("npu-0-1of2-1")]), other)
    (message,) = unsized_partitions(obj, CATALOG, DRIVER, NODE)
    assert "npu-0-1of2-1 (32Gi, 50 %" in message


@pytest.mark.parametrize(
    "entry",
    [
        shared("npu-0"),  # consumable: the share is sized by the scheduler
        result("npu-0"),  # a whole device (exclusive mode)
        result("npu-0-1of4-0", pool="node-b"),  # another node's
        result("npu-0-1of4-0", driver="gpu.example.com"),  # another driver's
        result("npu-7-1of4-0"),  # not a device of this node: prepare refuses it, no notice
    ],
)
def test_only_this_nodes_partitions_of_our_driver_get_a_notice(entry: dict[str, Any]) -> None:
    assert unsized_partitions(claim(results=[entry]), CATALOG, DRIVER, NODE) == []


def test_a_subrequest_is_judged_by_its_own_selectors() -> None:
    obj = claim(results=[result("npu-0-1of4-1", request="req/small"), result("npu-1", request="req/big")])
    obj["spec"]["devices"]["requests"] = [{"name": "req", "firstAvailable": [
        {"name": "big", "deviceClassName": "npu.xpushare.io"},
        {"name": "small", "deviceClassName": "npu.xpushare.io"},
    ]}]
    (message,) = unsized_partitions(obj, CATALOG, DRIVER, NODE)
    assert message.startswith("request req/small: given partition npu-0-1of4-1")
    small = obj["spec"]["devices"]["requests"][0]["firstAvailable"][1]
    small["selectors"] = [{"cel": {"expression": BY_CAPACITY}}]
    assert unsized_partitions(obj, CATALOG, DRIVER, NODE) == []


def test_a_malformed_claim_gives_no_notice_and_no_crash() -> None:
    allocated = {"allocation": {"devices": {"results": [result("npu-0-1of4-0")]}}}
    broken = {"status": {"allocation": {"devices": {"results": [7, None]}}}}
    for obj in ({}, broken, {"spec": 3, "status": 4}):
        assert unsized_partitions(obj, CATALOG, DRIVER, NODE) == []
    # Whatever the requests look like, the partition given is still named (its request chose no size).
    for spec in (3, {"devices": {"requests": [{"name": "req"}]}}, {"devices": {"requests": "req"}}):
        assert len(unsized_partitions({"spec": spec, "status": allocated}, CATALOG, DRIVER, NODE)) == 1
