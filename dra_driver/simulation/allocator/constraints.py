"""Claim constraints across the devices of one claim: ``matchAttribute`` and ``distinctAttribute``.

Like kube-scheduler, a constraint only looks at the requests it names (all requests when it names
none; a parent request name covers its subrequests), a device lacking the attribute never satisfies it,
and ``matchAttribute`` fixes its value with the first device picked. Each tracker is updated on pick and
undone on backtrack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dra_driver.simulation.allocator.model import AttributeValue, Constraint, Device, Request

__all__ = ["ConstraintTracker", "lookup_attribute"]


def lookup_attribute(device: Device, driver: str, qualified: str) -> AttributeValue | None:
    """A device attribute by fully qualified name; the driver's own domain may be left off in the slice."""
    if qualified in device.attributes:
        return device.attributes[qualified]
    domain, sep, ident = qualified.partition("/")
    if sep and domain == driver:
        return device.attributes.get(ident)
    return None


@dataclass
class ConstraintTracker:
    constraint: Constraint
    values: list[AttributeValue] = field(default_factory=list)

    def applies(self, request: Request) -> bool:
        names = self.constraint.requests
        return not names or request.name in names or request.parent in names or request.result_name in names

    def admits(self, request: Request, device: Device, driver: str) -> bool:
        if not self.applies(request):
            return True
        name = self.constraint.match_attribute or self.constraint.distinct_attribute
        value = lookup_attribute(device, driver, name)
        if value is None:
            return False
        if self.constraint.match_attribute:
            return not self.values or self.values[0] == value
        return value not in self.values

    def push(self, request: Request, device: Device, driver: str) -> bool:
        """Add the device if it is admitted; True when something was recorded (then pop undoes it)."""
        if not self.applies(request):
            return False
        value = lookup_attribute(
            device, driver, self.constraint.match_attribute or self.constraint.distinct_attribute
        )
        assert value is not None  # push follows a successful admits()
        self.values.append(value)
        return True

    def pop(self) -> None:
        self.values.pop()
