"""Consumable capacity (KEP-5075): what one request consumes on a shared device, and whether it fits.

For every capacity a device publishes, a request consumes its ``capacity.requests`` entry, else the
``requestPolicy.default``, else the whole capacity (so a claim that asks for nothing takes the device).
An explicit request is rounded up: to ``validRange.min`` if below it, then to ``min + k*step``; or to
the smallest ``validValues`` entry at or above it. A rounded value above ``validRange.max`` or above
every valid value violates the policy and the device does not fit. The sum over all shares must stay
within the capacity's value. Request names without a domain match the driver's domain and vice versa,
as in kube-scheduler. All arithmetic is exact (``Fraction``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from dra_driver.core.quantity import Quantity
from dra_driver.simulation.allocator.model import Capacity, Device, RequestPolicy

__all__ = ["consumed_capacity", "exclusive_capacity_fits", "fits_remaining", "resolve_capacity_name"]


def resolve_capacity_name(name: str, driver: str, capacity: Mapping[str, Capacity]) -> str | None:
    """The device's own key for a requested (or recorded) capacity name, or None if it has none."""
    if name in capacity:
        return name
    domain, sep, ident = name.partition("/")
    if sep:
        return ident if domain == driver and ident in capacity else None
    qualified = f"{driver}/{name}"
    return qualified if qualified in capacity else None


def _round_up(requested: Quantity, policy: RequestPolicy) -> Quantity:
    if policy.min is not None:
        if requested < policy.min:
            return policy.min
        if policy.step is None:
            return requested
        steps = math.ceil((requested.value - policy.min.value) / policy.step.value)
        return policy.step.with_value(policy.min.value + steps * policy.step.value)
    for valid in policy.valid_values:
        if requested <= valid:
            return valid
    return requested


def _violates(value: Quantity, policy: RequestPolicy | None) -> bool:
    if policy is None or (policy.default is not None and value == policy.default):
        return False
    if policy.min is not None:
        if policy.max is not None and value > policy.max:
            return True
        return policy.step is not None and (value.value - policy.min.value) % policy.step.value != 0
    if policy.valid_values:
        return value not in policy.valid_values
    return False


def _consumed_one(requested: Quantity | None, capacity: Capacity) -> Quantity:
    policy = capacity.policy
    if requested is None:
        if policy is not None and policy.default is not None:
            return policy.default
        return capacity.value
    return requested if policy is None else _round_up(requested, policy)


def consumed_capacity(
    requests: Mapping[str, Quantity], device: Device, driver: str
) -> dict[str, Quantity] | None:
    """What a request consumes on a shared device, per capacity (every one, zero included).

    None when the device cannot serve the request at all: it lacks a requested capacity, or the
    rounded amount violates the request policy.
    """
    resolved: dict[str, Quantity] = {}
    for name, amount in requests.items():
        key = resolve_capacity_name(name, driver, device.capacity)
        if key is None:
            return None
        resolved[key] = amount
    consumed = {}
    for key, capacity in device.capacity.items():
        value = _consumed_one(resolved.get(key), capacity)
        if _violates(value, capacity.policy):
            return None
        consumed[key] = value
    return consumed


def fits_remaining(consumed: Mapping[str, Quantity], already: Mapping[str, Fraction], device: Device) -> bool:
    """True when ``consumed`` plus what other shares hold stays within every capacity of the device."""
    return all(
        already.get(key, Fraction(0)) + amount.value <= device.capacity[key].value.value
        for key, amount in consumed.items()
    )


def exclusive_capacity_fits(requests: Mapping[str, Quantity], device: Device, driver: str) -> bool:
    """A device that is not shared serves capacity requests only if it has that much in total."""
    for name, amount in requests.items():
        key = resolve_capacity_name(name, driver, device.capacity)
        if key is None or amount > device.capacity[key].value:
            return False
    return True
