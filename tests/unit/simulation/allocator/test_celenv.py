"""The CEL environment's semantic versions and device variable, beyond what the allocation table covers.

Guards version selectors (precedence per semver.org, not text order) and the shape of ``device``.
"""

from __future__ import annotations

import pytest

from dra_driver.core.quantity import parse_quantity
from dra_driver.simulation.allocator import CelCache, SelectorError
from dra_driver.simulation.allocator.celenv import device_variable, parse_semver

ORDERED = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.10.0",
    "2.0.0",
]


def test_semver_precedence_follows_the_spec() -> None:
    keys = [parse_semver(v).key() for v in ORDERED]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("text", ["1.2", "01.2.3", "1.2.3-", "v1.2.3", "1.2.3.4"])
def test_invalid_versions_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        parse_semver(text)


DEVICE = device_variable(
    "xpushare.io",
    {
        "type": "gpu",
        "index": 3,
        "healthy": True,
        "runtimeVersion": parse_semver("12.4.0"),
        "resource.kubernetes.io/pciBusID": "0000:3b:00.0",
        "modes": ("a", "b"),
    },
    {"memory": parse_quantity("80Gi")},
    allow_multiple_allocations=True,
)
ATTRS = 'device.attributes["xpushare.io"]'
MEMORY = 'device.capacity["xpushare.io"].memory'
SELECTS = {
    "driver": 'device.driver == "xpushare.io"',
    "int attribute": 'device.attributes["xpushare.io"].index == 3',
    "bool attribute": 'device.attributes["xpushare.io"].healthy',
    "qualified attribute keeps its own domain": (
        'device.attributes["resource.kubernetes.io"].pciBusID.startsWith("0000:3b")'
    ),
    "semver major": 'device.attributes["xpushare.io"].runtimeVersion.major() == 12',
    "semver is not compared as text": ATTRS + '.runtimeVersion.isLessThan(semver("12.10.0"))',
    "list attribute": '"b" in device.attributes["xpushare.io"].modes',
    "allowMultipleAllocations": "device.allowMultipleAllocations",
    "quantity arithmetic": MEMORY + '.sub(quantity("16Gi")).compareTo(quantity("64Gi")) == 0',
    "isQuantity": 'isQuantity("16Gi") && !isQuantity("16GB")',
}


@pytest.mark.parametrize("expression", SELECTS.values(), ids=SELECTS.keys())
def test_selector_sees_the_device_as_kubernetes_presents_it(expression: str) -> None:
    assert CelCache().matches(expression, DEVICE) is True


def test_a_non_boolean_result_is_an_error() -> None:
    with pytest.raises(SelectorError, match="must be a bool"):
        CelCache().matches("device.driver", DEVICE)


def test_an_expression_compiles_once_and_its_error_is_cached() -> None:
    cache = CelCache()
    for _ in range(2):
        with pytest.raises(SelectorError, match="compile error"):
            cache.matches("device.driver ==", DEVICE)
    assert len(cache._programs) == 1


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (ATTRS + ".index < 3.5", True),  # int attribute against a double literal
        (ATTRS + ".index <= 3u", True),
        (ATTRS + ".index > 2.999", True),
        (ATTRS + ".index >= 3.0001", False),
        (ATTRS + ".index == 3.0", True),  # numbers equal by value across types
        (ATTRS + ".index != 3.0", False),
        (ATTRS + '.index == "3"', False),  # other types are simply unequal, not an error
        (ATTRS + '.type != 3', True),
        ("3.5 > " + ATTRS + ".index", True),
    ],
)
def test_numbers_compare_across_types_and_other_types_are_unequal(expression: str, expected: bool) -> None:
    """kube-apiserver's CEL has cross-type numeric comparisons and heterogeneous equality."""
    assert CelCache().matches(expression, DEVICE) is expected


def test_ordering_values_of_unrelated_types_is_still_an_error() -> None:
    with pytest.raises(SelectorError, match="no matching overload"):
        CelCache().matches(ATTRS + '.index < "4"', DEVICE)
