"""The worst-case cost estimate, worked by hand from cel-go's rules, and where the 1,000,000 limit falls."""

from __future__ import annotations

import pytest

from dra_driver.simulation.celcompile import checker, cost, library, syntax


def max_cost(expression: str) -> int:
    root = syntax.parse(expression)
    checked = checker.check(root, library.device_fields(consumable_capacity=True))
    assert not checked.issues
    return cost.max_cost(root, checked)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # device (1) .driver (1), "abc" (0); == charges a tenth of the shorter string: ceil(3 * 0.1) = 1
        ('device.driver == "abc"', 3),
        # range (2) + result (1) + 32 attribute domains x (condition 2 + step 1)
        ("device.attributes.all(d, true)", 99),
        # three nested loops over the domains: 2 + 1 + 32 x (3 + (2 + 1 + 32 x (3 + 99)))
        ("device.attributes.all(a, device.attributes.all(b, device.attributes.all(c, true)))", 104_643),
        # Kubernetes charges 1 for == between quantities, whatever their size
        ('device.capacity["x"].m == quantity("1")', 6),
    ],
)
def test_costs_as_cel_go_estimates_them(expression: str, expected: int) -> None:
    assert max_cost(expression) == expected


@pytest.mark.parametrize(
    "expression",
    [
        # four nested loops: 32^4 iterations
        "device.attributes.exists(a, device.attributes.exists(b, device.attributes.exists(c, "
        "device.attributes.exists(d, true))))",
        # != has no such rule: two quantities of unknown size
        'device.capacity["x"].m != quantity("1")',
        # the elements of a split have no known size
        'device.driver.split(".").all(p, device.driver.split(".").all(q, p == q))',
        # nothing bounds the size of a type value
        "type(device.driver) == string",
    ],
)
def test_over_the_limit(expression: str) -> None:
    assert max_cost(expression) > cost.SELECTOR_MAX_COST


def test_a_split_of_a_bounded_string_is_bounded() -> None:
    # device.driver (2), split(".") of at most 63 characters: ceil(63 x 0.2) = 13, size() (1), > (1)
    assert max_cost('device.driver.split(".").size() > 1') == 17
