"""The same ask in every slice mode: what each request of the workload wants, and how each mode says it.

docs/configuration.md shows one intent ("16Gi and 25 %") written three ways: capacity requests
(consumable), a CEL selector on a partition's capacity (partitioned), a ``SharingConfig`` on a whole
device (exclusive). The intent is read from whichever form the workload uses (capacity requests first,
then selectors in the documented form, then a SharingConfig), and written in the form each mode needs.
A request that leaves memory unset takes the whole device's memory in consumable mode, so the other
modes get a whole device too. Requests for other drivers' classes are left as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.settings import ATTRIBUTE_DOMAIN, SliceMode
from dra_driver.core.devices import MIB
from dra_driver.core.kubetypes import Obj, ObjView
from dra_driver.core.quantity import Quantity, QuantityError, parse_quantity

__all__ = ["Intent", "UnknownIntent", "our_classes", "request_intent", "rewrite_claim"]

_SELECTOR = re.compile(
    r'device\.capacity\[\s*"([^"]+)"\s*\]\.(memory|cores)\.compareTo\(\s*quantity\(\s*"([^"]+)"\s*\)\s*\)\s*>=\s*0'
)
_CAPACITY_READ = re.compile(r"\bcapacity\s*\[")
WHOLE = f'device.attributes["{ATTRIBUTE_DOMAIN}"].partition == "1"'


class UnknownIntent(Exception):  # noqa: N818 - a signal, reported as a note
    """A request sizes itself in a way that cannot be carried to another mode."""


@dataclass(frozen=True, slots=True)
class Intent:
    memory: Quantity | None = None  # None: the whole device's memory
    cores: Quantity | None = None  # None: the slices' default (no share of its own)

    def describe(self, mode: SliceMode) -> str:
        sized = [
            f"{name}={value}" for name, value in (("memory", self.memory), ("cores", self.cores)) if value
        ]
        if mode is SliceMode.CONSUMABLE:
            return f"capacity {' '.join(sized)}" if sized else "no capacity request (the whole memory)"
        if mode is SliceMode.PARTITIONED:
            if self.memory is None:
                return "selector: a whole-device partition"
            return "selector: partition with " + " ".join(s.replace("=", ">=") for s in sized)
        limits = self.sharing_config()
        return "whole device" + (
            f", SharingConfig {' '.join(f'{k}={v}' for k, v in limits.items())}" if limits else ""
        )

    def sharing_config(self) -> dict[str, int]:
        limits = {}
        if self.memory is not None:
            limits["memoryMiB"] = max(1, math.ceil(self.memory.value / MIB))
        if self.cores is not None and self.cores.value > 0:
            limits["corePercent"] = min(100, max(1, math.ceil(self.cores.value)))
        return limits


def our_classes(classes: Sequence[ObjView], driver: str) -> frozenset[str]:
    """The DeviceClasses whose selectors name ``driver``: requests for them are ours to rewrite."""
    marker = f'"{driver}"'
    return frozenset(
        str((c.get("metadata") or {}).get("name"))
        for c in classes
        if any(
            marker in str(((s or {}).get("cel") or {}).get("expression", ""))
            for s in (c.get("spec") or {}).get("selectors") or ()
        )
    )


def _quantity(value: Any) -> Quantity | None:
    try:
        return parse_quantity(value)
    except QuantityError:
        return None


def _sharing(configs: Sequence[ObjView], request: str, driver: str) -> Mapping[str, Any]:
    found: dict[str, Any] = {}
    for config in configs:
        names = config.get("requests") or []
        opaque = config.get("opaque") or {}
        params = opaque.get("parameters") or {}
        if (
            opaque.get("driver") == driver
            and params.get("kind") == "SharingConfig"
            and (not names or request in names)
        ):
            found.update(params)
    return found


def request_intent(alternative: ObjView, configs: Sequence[ObjView], request: str, driver: str) -> Intent:
    """What one request (or subrequest) asks for; UnknownIntent when its capacity selectors are not ours."""
    asked = (alternative.get("capacity") or {}).get("requests") or {}
    values: dict[str, Quantity | None] = {
        name: _quantity(asked.get(name, asked.get(f"{driver}/{name}"))) for name in ("memory", "cores")
    }
    for selector in alternative.get("selectors") or ():
        expression = str(((selector or {}).get("cel") or {}).get("expression", ""))
        found = [m for m in _SELECTOR.finditer(expression) if m[1] == driver]
        if len(found) != len(_CAPACITY_READ.findall(expression)):
            raise UnknownIntent(
                f"request {request}: a selector reads capacity in a form other than "
                'device.capacity["DRIVER"].NAME.compareTo(quantity("Q")) >= 0'
            )
        for match in found:
            if values[match[2]] is None:
                values[match[2]] = _quantity(match[3])
    sharing = _sharing(configs, request, driver)
    if values["memory"] is None and isinstance(sharing.get("memoryMiB"), int):
        values["memory"] = parse_quantity(f"{sharing['memoryMiB']}Mi")
    if values["cores"] is None and isinstance(sharing.get("corePercent"), int):
        values["cores"] = parse_quantity(sharing["corePercent"])
    return Intent(values["memory"], values["cores"])


def _selectors(alternative: ObjView) -> list[Obj]:
    return [dict(s) for s in alternative.get("selectors") or ()]


def _rewrite(alternative: ObjView, intent: Intent, mode: SliceMode, driver: str) -> Obj:
    out = {k: v for k, v in alternative.items() if k != "capacity"}
    if mode is SliceMode.CONSUMABLE:
        sized = {
            name: str(value) for name, value in (("memory", intent.memory), ("cores", intent.cores)) if value
        }
        if sized:
            out["capacity"] = {"requests": sized}
    elif mode is SliceMode.PARTITIONED:
        terms = [WHOLE] if intent.memory is None else []
        terms += [
            f'device.capacity["{driver}"].{name}.compareTo(quantity("{value}")) >= 0'
            for name, value in (("memory", intent.memory), ("cores", intent.cores))
            if value
        ]
        out["selectors"] = [*_selectors(alternative), {"cel": {"expression": " && ".join(terms)}}]
    return out


def rewrite_claim(spec: ObjView, mode: SliceMode, driver: str, ours: frozenset[str]) -> tuple[Obj, list[str]]:
    """The claim spec written for ``mode``, and how each of our requests asks there."""
    devices = dict(spec.get("devices") or {})
    configs = list(devices.get("config") or [])
    requests, described = [], []
    for raw in devices.get("requests") or ():
        request = dict(raw)
        name = str(request.get("name", ""))
        alternatives = (
            [request["exactly"]] if request.get("exactly") else list(request.get("firstAvailable") or ())
        )
        rewritten = []
        for alternative in alternatives:
            if alternative.get("deviceClassName") not in ours:
                rewritten.append(dict(alternative))
                continue
            sub = str(alternative.get("name") or "")
            intent = request_intent(alternative, configs, name, driver)
            rewritten.append(_rewrite(alternative, intent, mode, driver))
            described.append(f"{name}{'/' + sub if sub else ''}: {intent.describe(mode)}")
            if mode is SliceMode.EXCLUSIVE and intent.sharing_config():
                configs.append(_sharing_entry(name, driver, intent))
        if request.get("exactly"):
            request["exactly"] = rewritten[0]
        else:
            request["firstAvailable"] = rewritten
        requests.append(request)
    devices["requests"] = requests
    if configs:
        devices["config"] = configs
    return {**spec, "devices": devices}, described


def _sharing_entry(request: str, driver: str, intent: Intent) -> Obj:
    parameters = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig", **intent.sharing_config()}
    return {"requests": [request], "opaque": {"driver": driver, "parameters": parameters}}
