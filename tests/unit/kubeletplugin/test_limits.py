"""Per-device limits come from consumedCapacity, the partition, or SharingConfig, in that order of modes."""

from __future__ import annotations

from fractions import Fraction
from types import MappingProxyType

import pytest

from controller.settings import SliceSettings
from dra_driver.core.devices import GIB, MIB
from kubeletplugin.claims import ClaimError, parse_claim
from kubeletplugin.limits import Catalog, resolve_limits
from tests.support.plugin_claims import DRIVER, NODE, claim, npu, opaque, result, shared, sharing

CATALOG = Catalog([npu(0), npu(1)])


def _grants(obj: dict):  # type: ignore[no-untyped-def,type-arg]
    return resolve_limits(parse_claim(obj, uid=obj["metadata"]["uid"], driver=DRIVER, pool=NODE), CATALOG)


def test_consumable_share_takes_memory_and_cores_from_consumed_capacity() -> None:
    (grant,) = _grants(claim(results=[shared("npu-0", memory="16Gi", cores="25")]))
    assert (grant.memory_bytes, grant.core_percent) == (16 * GIB, 25)
    assert (grant.priority, grant.policy) == ("normal", "guaranteed")
    assert not grant.exclusive


def test_consumable_share_without_cores_is_best_effort() -> None:
    (grant,) = _grants(claim(results=[result("npu-0", share_id="s1", consumed={"memory": "8Gi"})]))
    assert (grant.memory_bytes, grant.core_percent) == (8 * GIB, 0)


def test_partition_gets_its_own_size() -> None:
    (grant,) = _grants(claim(results=[result("npu-1-1of4-2")]))
    assert grant.offer.physical.uuid == "NPU-UUID-1"
    assert (grant.memory_bytes, grant.core_percent) == (16 * GIB, 25)
    assert grant.exclusive


def test_partitions_of_either_layout_are_known_by_name_and_sized_alike() -> None:
    """Claims prepared before a layout change keep working: the catalog knows both layouts' names."""
    halves = MappingProxyType({"npu": (Fraction(1, 2),) * 2})
    fixed = Catalog([npu(0)], SliceSettings(fixed_partitions=halves))
    menu_only = fixed.get("npu-0-1of4-3")  # the default menu's quarter, not a piece of this fixed layout
    half = fixed.get("npu-0-1of2-1")
    assert menu_only is not None
    assert half is not None
    assert (menu_only.memory_bytes, menu_only.core_percent) == (16 * GIB, 25)
    assert (half.memory_bytes, half.core_percent) == (32 * GIB, 50)
    assert fixed.get("npu-0-1of8-0") is None  # a size neither layout has


def test_exclusive_device_takes_limits_from_class_then_claim_config() -> None:
    obj = claim(
        results=[result("npu-0")],
        configs=[
            opaque(sharing(memoryMiB=4096, priority="high"), source="FromClass"),
            opaque(sharing(corePercent=40, computePolicy="fixed")),
            opaque(sharing(memoryMiB=2048), requests=["other"]),
        ],
    )
    (grant,) = _grants(obj)
    assert (grant.memory_bytes, grant.core_percent) == (4096 * MIB, 40)
    assert (grant.priority, grant.policy) == ("high", "fixed")


def test_claim_config_overrides_class_config_for_the_same_field() -> None:
    obj = claim(
        results=[result("npu-0", request="req/sub")],
        configs=[
            opaque(sharing(memoryMiB=4096), source="FromClass"),
            opaque(sharing(memoryMiB=1024), requests=["req"]),
        ],
    )
    (grant,) = _grants(obj)
    assert grant.memory_bytes == 1024 * MIB
    assert grant.request_names == ("req",)


def test_exclusive_device_without_config_gets_the_whole_device() -> None:
    (grant,) = _grants(claim(results=[result("npu-0")]))
    assert (grant.memory_bytes, grant.core_percent) == (64 * GIB, 100)


def test_malformed_config_names_the_claim_and_the_field() -> None:
    obj = claim(name="typo", results=[result("npu-0")], configs=[opaque(sharing(corePercnt=25))])
    with pytest.raises(ClaimError, match=r"claim default/typo .*corePercnt: unknown field"):
        _grants(obj)


def test_out_of_range_config_names_the_allowed_range() -> None:
    obj = claim(results=[result("npu-0")], configs=[opaque(sharing(corePercent=150))])
    with pytest.raises(ClaimError, match="corePercent: must be between 1 and 100"):
        _grants(obj)


def test_memory_beyond_the_device_is_refused() -> None:
    with pytest.raises(ClaimError, match=r"outside 1\.\.68719476736 bytes"):
        _grants(claim(results=[shared("npu-0", memory="65Gi")]))


def test_unknown_device_is_refused() -> None:
    with pytest.raises(ClaimError, match="npu-7 is not a device of this node"):
        _grants(claim(results=[result("npu-7")]))


def test_two_shares_of_one_device_in_one_claim_are_two_grants() -> None:
    grants = _grants(claim(results=[shared("npu-0", request="a"), shared("npu-0", request="b")]))
    assert [g.request_names for g in grants] == [("a",), ("b",)]
