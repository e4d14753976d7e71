"""Device attributes and taints as the resource.k8s.io/v1 API spells them.

Attribute names are qualified with the ``xpushare.io`` domain (standard ones with
``resource.kubernetes.io``), so CEL selectors such as ``device.attributes["xpushare.io"].type`` keep
working whatever ``--driver-name`` is. Values are clipped to the API's limits here, once, because a
slice with one over-long string is rejected as a whole.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from controller.settings import ATTRIBUTE_DOMAIN, UNHEALTHY_TAINT_KEY
from dra_driver.core.devices import Device, Health
from dra_driver.core.vendors import profile_for

MAX_STRING = 64
PCI_BUS_ID_ATTRIBUTE = "resource.kubernetes.io/pciBusID"

_VERSION_HEAD = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)$")
_IDENTIFIER_INVALID = re.compile(r"[^0-9A-Za-z-]+")
_LABEL_VALUE_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")


@lru_cache(maxsize=1024)
def semver(text: str) -> str | None:
    """Coerce a vendor version ("24.1.rc2", "8.0.RC3", "12.4") into semver 2.0.0, or None.

    Vendors rarely publish semver; coercing keeps the numeric order so CEL's ``isGreaterThan`` works.
    """
    match = _VERSION_HEAD.match(text)
    if match is None:
        return None
    major, minor, patch, rest = match.groups()
    core = f"{int(major)}.{int(minor or 0)}.{int(patch or 0)}"
    identifiers = []
    for raw in re.split(r"[._+]", rest):
        cleaned = _IDENTIFIER_INVALID.sub("-", raw).strip("-")
        if cleaned.isdigit():
            cleaned = str(int(cleaned))
        if cleaned:
            identifiers.append(cleaned)
    version = f"{core}-{'.'.join(identifiers)}" if identifiers else core
    return version if len(version) <= MAX_STRING else core


def _string(value: str) -> dict[str, Any]:
    return {"string": value[:MAX_STRING]}


def qualified(name: str) -> str:
    return f"{ATTRIBUTE_DOMAIN}/{name}"


def device_attributes(device: Device, sharing: str) -> dict[str, dict[str, Any]]:
    """The attributes of one physical device (DESIGN.md section 2); empty values are left out."""
    attributes: dict[str, dict[str, Any]] = {
        qualified("type"): {"string": device.type.value},
        qualified("index"): {"int": device.index},
        qualified("sharing"): {"string": sharing},
    }
    for name, text in (("vendor", device.vendor), ("model", device.model), ("uuid", device.uuid)):
        if text:
            attributes[qualified(name)] = _string(text)
    for name, text in (("driverVersion", device.driver_version), ("runtimeVersion", device.runtime_version)):
        version = semver(text) if text else None
        if version is not None:
            attributes[qualified(name)] = {"version": version}
    attributes[qualified(profile_for(device.type).cores_attribute)] = {"int": device.cores}
    if device.numa_node is not None:
        attributes[qualified("numaNode")] = {"int": device.numa_node}
    if device.pci_bus_id:
        attributes[PCI_BUS_ID_ATTRIBUTE] = _string(device.pci_bus_id)
    return attributes


def unhealthy_taints(device: Device) -> list[dict[str, str]]:
    """A NoSchedule taint while the device is unhealthy; nothing otherwise (the taint goes on recovery)."""
    if device.health is not Health.UNHEALTHY:
        return []
    taint = {"key": UNHEALTHY_TAINT_KEY, "effect": "NoSchedule"}
    value = label_value(device.health_message)
    if value:
        taint["value"] = value
    return [taint]


def label_value(text: str) -> str:
    """Squeeze free text into a Kubernetes label value (at most 63 characters, alphanumeric ends)."""
    cleaned = _LABEL_VALUE_INVALID.sub("-", text.strip())[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
