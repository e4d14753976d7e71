"""Feature gates the embedded API server can switch off, and the fields each one drops.

A real API server with a DRA gate off silently drops the gated fields on write (its strategy's
``dropDisabledFields``); XPUShare's publisher in ``auto`` mode detects that by comparing what it wrote
with what came back. Reproducing the drop lets tests exercise that fallback without a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.errors import ConfigError
from dra_driver.core.kubetypes import Obj

CONSUMABLE_CAPACITY = "DRAConsumableCapacity"
PARTITIONABLE_DEVICES = "DRAPartitionableDevices"
DEVICE_TAINTS = "DRADeviceTaints"

GATES: dict[str, str] = {
    CONSUMABLE_CAPACITY: "devices shared by several claims (allowMultipleAllocations, requestPolicy, "
    "capacity requests, shareID, consumedCapacity)",
    PARTITIONABLE_DEVICES: "partitions consuming shared counters (sharedCounters, consumesCounters)",
    DEVICE_TAINTS: "device taints and the tolerations in claims",
}


@dataclass(frozen=True)
class Gates:
    """The set of disabled gates; immutable so it can be shared by every request thread."""

    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_names(cls, names: list[str] | tuple[str, ...] | None) -> Gates:
        unknown = sorted(set(names or ()) - set(GATES))
        if unknown:
            raise ConfigError(f"--disable-gate: unknown gate(s) {', '.join(unknown)}; "
                              f"known gates: {', '.join(sorted(GATES))}")
        return cls(frozenset(names or ()))

    def enabled(self, gate: str) -> bool:
        return gate not in self.disabled

    def drop_disabled_fields(self, kind: str, obj: Obj) -> None:
        """Remove the fields of disabled gates from ``obj`` in place."""
        if not self.disabled:
            return
        if kind == "ResourceSlice":
            self._drop_slice(obj.get("spec") or {})
        elif kind == "ResourceClaim":
            self._drop_claim_spec(obj.get("spec") or {})
            self._drop_claim_status(obj.get("status") or {})
        elif kind == "ResourceClaimTemplate":
            self._drop_claim_spec((obj.get("spec") or {}).get("spec") or {})

    def _drop_slice(self, spec: Obj) -> None:
        if not self.enabled(PARTITIONABLE_DEVICES):
            spec.pop("sharedCounters", None)
            spec.pop("perDeviceNodeSelection", None)
        for device in _dicts(spec.get("devices")):
            if not self.enabled(CONSUMABLE_CAPACITY):
                device.pop("allowMultipleAllocations", None)
                for capacity in (device.get("capacity") or {}).values():
                    if isinstance(capacity, dict):
                        capacity.pop("requestPolicy", None)
            if not self.enabled(PARTITIONABLE_DEVICES):
                for key in ("consumesCounters", "nodeName", "nodeSelector", "allNodes"):
                    device.pop(key, None)
            if not self.enabled(DEVICE_TAINTS):
                device.pop("taints", None)

    def _drop_claim_spec(self, spec: Obj) -> None:
        for request in _dicts((spec.get("devices") or {}).get("requests")):
            for sub in [request.get("exactly"), *_dicts(request.get("firstAvailable"))]:
                if not isinstance(sub, dict):
                    continue
                if not self.enabled(CONSUMABLE_CAPACITY):
                    sub.pop("capacity", None)
                if not self.enabled(DEVICE_TAINTS):
                    sub.pop("tolerations", None)

    def _drop_claim_status(self, status: Obj) -> None:
        if self.enabled(CONSUMABLE_CAPACITY):
            return
        results = ((status.get("allocation") or {}).get("devices") or {}).get("results")
        for result in _dicts(results):
            result.pop("shareID", None)
            result.pop("consumedCapacity", None)
        for device in _dicts(status.get("devices")):
            device.pop("shareID", None)


def _dicts(value: Any) -> list[Obj]:
    return [item for item in value or () if isinstance(item, dict)]
