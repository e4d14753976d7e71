"""What is held on each device: exclusive use, shares with their consumed capacity, and counters.

The ledger starts from the allocations that already exist (read from claims' status) and the search
adds and removes tentative picks on a private copy. Each ``take`` is checked and applied in one step and
returns an undo, so backtracking restores the exact previous state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from dra_driver.core.quantity import Quantity
from dra_driver.simulation.allocator.capacity import (
    consumed_capacity,
    exclusive_capacity_fits,
    fits_remaining,
    resolve_capacity_name,
)
from dra_driver.simulation.allocator.model import AllocatedDevice, Device, DeviceID, Request, Slice
from dra_driver.simulation.allocator.pools import Pool

__all__ = ["Ledger", "Located", "Pick"]

PoolKey = tuple[str, str]
Counters = dict[str, dict[str, Fraction]]


@dataclass(frozen=True, slots=True)
class Located:
    """A device with the pool and slice it was published in."""

    id: DeviceID
    pool: Pool
    slice: Slice
    device: Device


@dataclass(frozen=True, slots=True)
class Pick:
    """A tentative allocation of one device to one request."""

    located: Located
    consumed: Mapping[str, Quantity] = field(default_factory=dict)

    @property
    def shared(self) -> bool:
        return self.located.device.allow_multiple_allocations


@dataclass
class Ledger:
    in_use: set[DeviceID] = field(default_factory=set)
    shares: dict[DeviceID, int] = field(default_factory=dict)
    consumed: dict[DeviceID, dict[str, Fraction]] = field(default_factory=dict)
    counters: dict[PoolKey, Counters] = field(default_factory=dict)

    @classmethod
    def from_allocations(
        cls, allocated: Iterable[AllocatedDevice], index: Mapping[DeviceID, Located]
    ) -> Ledger:
        """The state left by existing allocations."""
        ledger = cls()
        ledger.hold(allocated, index)
        return ledger

    def hold(self, allocated: Iterable[AllocatedDevice], index: Mapping[DeviceID, Located]) -> None:
        """Add allocations made elsewhere; results for devices not in any usable pool hold nothing."""
        for held in allocated:
            located = index.get(held.id)
            if held.admin_access or located is None:
                continue
            # A device charges its counters once, when its first holder arrives, however many shares.
            first_holder = held.id not in self.in_use and not self.shares.get(held.id, 0)
            if held.share_id or located.device.allow_multiple_allocations:
                self.shares[held.id] = self.shares.get(held.id, 0) + 1
                self._add_consumed(located, held.consumed, 1)
            else:
                self.in_use.add(held.id)
            if first_holder:
                self._add_counters(located, 1)

    def copy(self) -> Ledger:
        """An independent copy (the values are immutable, so copying the containers suffices)."""
        return Ledger(
            in_use=set(self.in_use),
            shares=dict(self.shares),
            consumed={did: dict(amounts) for did, amounts in self.consumed.items()},
            counters={
                key: {name: dict(c) for name, c in sets.items()} for key, sets in self.counters.items()
            },
        )

    def _add_consumed(self, located: Located, amounts: Mapping[str, Quantity], sign: int) -> None:
        held = self.consumed.setdefault(located.id, {})
        for name, amount in amounts.items():
            key = resolve_capacity_name(name, located.id.driver, located.device.capacity)
            if key is not None:
                held[key] = held.get(key, Fraction(0)) + sign * amount.value

    def _add_counters(self, located: Located, sign: int) -> None:
        used = self.counters.setdefault((located.pool.driver, located.pool.name), {})
        for consumption in located.device.consumes_counters:
            per_set = used.setdefault(consumption.counter_set, {})
            for name, amount in consumption.counters.items():
                per_set[name] = per_set.get(name, Fraction(0)) + sign * amount.value

    def _counters_fit(self, located: Located) -> bool:
        used = self.counters.get((located.pool.driver, located.pool.name), {})
        for consumption in located.device.consumes_counters:
            available = located.pool.counter_sets.get(consumption.counter_set, {})
            for name, amount in consumption.counters.items():
                total = available.get(name)
                already = used.get(consumption.counter_set, {}).get(name, Fraction(0))
                if total is None or already + amount.value > total.value:
                    return False
        return True

    def check(self, request: Request, located: Located) -> tuple[Pick | None, str]:
        """A pick if the device can serve the request now, else None and the reason it cannot."""
        device, did = located.device, located.id
        shared = device.allow_multiple_allocations
        if not shared and not request.admin_access and did in self.in_use:
            return None, "in use"
        consumed: Mapping[str, Quantity] = {}
        if shared:
            wanted = consumed_capacity(request.capacity, device, did.driver)
            if wanted is None:
                return None, "capacity request outside the device's capacities or request policy"
            if not fits_remaining(wanted, self.consumed.get(did, {}), device):
                return None, "not enough free capacity"
            consumed = wanted
        elif not exclusive_capacity_fits(request.capacity, device, did.driver):
            return None, "not enough capacity"
        charges_counters = not (shared and self.shares.get(did, 0) > 0) and not request.admin_access
        if device.consumes_counters and charges_counters and not self._counters_fit(located):
            return None, "shared counters exhausted"
        return Pick(located, consumed), ""

    def apply(self, request: Request, pick: Pick) -> Callable[[], None]:
        """Record a checked pick; the returned function undoes exactly this pick."""
        located, did = pick.located, pick.located.id
        if request.admin_access:
            return lambda: None
        charges_counters = not (pick.shared and self.shares.get(did, 0) > 0)
        if pick.shared:
            self.shares[did] = self.shares.get(did, 0) + 1
            self._add_consumed(located, pick.consumed, 1)
        else:
            self.in_use.add(did)
        if charges_counters:
            self._add_counters(located, 1)

        def undo() -> None:
            if charges_counters:
                self._add_counters(located, -1)
            if pick.shared:
                self.shares[did] -= 1
                self._add_consumed(located, pick.consumed, -1)
            else:
                self.in_use.discard(did)

        return undo
