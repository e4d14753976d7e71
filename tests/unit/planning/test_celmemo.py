"""Selector answers shared between devices that look the same to the selector, and only then."""

from __future__ import annotations

import pytest

from dra_driver.core.quantity import parse_quantity
from dra_driver.planning.celmemo import SharedCel, referenced, referenced_names
from dra_driver.simulation.allocator import CelCache, SelectorError
from dra_driver.simulation.allocator.celenv import device_variable, parse_semver

CLASS = 'device.driver == "xpushare.io" && device.attributes["xpushare.io"].type == "gpu"'


@pytest.mark.parametrize(
    ("expression", "found"),
    [
        (CLASS, {("attributes", "xpushare.io", "type")}),
        (
            'device.capacity["xpushare.io"].memory.compareTo(quantity("16Gi")) >= 0',
            {("capacity", "xpushare.io", "memory")},
        ),
        (
            'has(device.attributes["x.io"]["numa"]) && device.attributes["x.io"].uuid.startsWith("G")',
            {("attributes", "x.io", "numa"), ("attributes", "x.io", "uuid")},
        ),
        ('device.attributes["xpushare.io"].exists(k, k == "uuid")', None),
        ('size(device.attributes["xpushare.io"]) > 3', None),
        ('device.attributes["xpushare.io"][device.driver] == "x"', None),
        ('"attributes" in device', None),
    ],
)
def test_the_fields_an_expression_reads_are_listed_only_when_every_access_is_literal(
    expression: str, found: set[tuple[str, str, str]] | None
) -> None:
    assert referenced(expression) == (None if found is None else frozenset(found))


def test_referenced_names_is_none_when_one_expression_cannot_be_read() -> None:
    assert referenced_names([CLASS, 'device.capacity["xpushare.io"].cores.isInteger()']) == frozenset(
        {"type", "cores"}
    )
    assert referenced_names([CLASS, 'size(device.attributes["xpushare.io"]) > 0']) is None


def variable(**attributes: object) -> object:
    capacity = {"memory": parse_quantity("80Gi")}
    return device_variable(
        "xpushare.io", {"xpushare.io/" + k: v for k, v in attributes.items()}, capacity, True
    )


def test_devices_that_agree_on_what_is_read_share_one_evaluation_and_the_answers_match_cel() -> None:
    shared, plain = SharedCel(), CelCache()
    devices = [variable(type="gpu", uuid=f"GPU-{i}", index=i) for i in range(50)]
    devices += [variable(type="npu", uuid=f"NPU-{i}", index=i) for i in range(50)]
    for device in devices:
        assert shared.matches(CLASS, device) == plain.matches(CLASS, device)  # type: ignore[arg-type]
    assert shared.evaluations == 2
    picky = 'device.attributes["xpushare.io"].index == 7'
    assert [shared.matches(picky, d) for d in devices].count(True) == 2  # type: ignore[arg-type]
    assert shared.evaluations == 2 + 50


def test_true_and_one_are_different_values_to_cel() -> None:
    shared = SharedCel()
    expression = 'device.attributes["xpushare.io"].flag == true'
    assert shared.matches(expression, variable(flag=True))  # type: ignore[arg-type]
    # int == bool: simply unequal under CEL's heterogeneous equality (a memo keyed by Python equality,
    # where 1 == True, would answer True again)
    assert not shared.matches(expression, variable(flag=1))  # type: ignore[arg-type]


def test_a_runtime_error_is_shared_too_and_raised_for_each_device() -> None:
    shared = SharedCel()
    missing = 'device.attributes["xpushare.io"].model == "x"'
    for _ in range(3):
        with pytest.raises(SelectorError):
            shared.matches(missing, variable(type="gpu"))  # type: ignore[arg-type]
    assert shared.evaluations == 1
    version = 'device.attributes["xpushare.io"].driverVersion.isGreaterThan(semver("535.0.0"))'
    assert shared.matches(version, variable(driverVersion=parse_semver("550.54.15")))  # type: ignore[arg-type]
