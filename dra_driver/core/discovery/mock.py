"""The mock backend: devices read from an inventory file, for the demo, the simulation and tests.

The inventory is user-written YAML or JSON, so it is validated strictly (unknown fields rejected, every
error reported with its path, e.g. ``devices[1].memory``). The file is re-read on every health check:
a test or a demo edits it to make a device unhealthy or to remove one, exactly as a real device would
fall sick or off the bus while the plugin runs.
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.errors import ConfigError, DiscoveryError
from api.yamlfile import load_documents
from dra_driver.core.devices import Device, DeviceType, Health, Scheduling

log = logging.getLogger(__name__)

DEFAULT_INVENTORY = "default.yaml"
_QUANTITY = re.compile(r"^\s*(\d+)\s*(Ki|Mi|Gi|Ti)?\s*$")
_UNITS = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}


def parse_memory(value: int | str) -> int:
    """Bytes from an int or a binary quantity (``64Gi``, ``81559Mi``)."""
    if isinstance(value, int):
        return value
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a byte count or a quantity such as 64Gi (units Ki, Mi, Gi, Ti)")
    return int(match.group(1)) * _UNITS[match.group(2)]


class InventoryDevice(BaseModel):
    """One device as an inventory file describes it (field names follow the published attributes)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    type: DeviceType
    vendor: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=64)
    uuid: str = Field(min_length=1, max_length=64)
    index: int = Field(ge=0, le=1023)
    memory: int = Field(gt=0, description="bytes, or a quantity such as 64Gi")
    cores: int = Field(ge=0, le=100_000)
    device_node: str = Field(alias="deviceNode", pattern=r"^/dev/\S+$")
    minor: int = Field(ge=0)
    pci_bus_id: str = Field(default="", alias="pciBusID", max_length=64)
    numa_node: int | None = Field(default=None, alias="numaNode", ge=0)
    driver_version: str = Field(default="", alias="driverVersion", max_length=64)
    runtime_version: str = Field(default="", alias="runtimeVersion", max_length=64)
    health: Health = Health.HEALTHY
    health_message: str = Field(default="", alias="healthMessage", max_length=1024)
    shareable: bool = True
    # The simulated devices run work in turns (dra_driver/simulation's fakes) unless set otherwise.
    scheduling: Scheduling = Scheduling.SERIAL
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        return parse_memory(value) if isinstance(value, str) else value

    def to_device(self) -> Device:
        # Every field is the Device field of the same name, but memory, which is in bytes there.
        return Device(memory_bytes=self.memory, **self.model_dump(exclude={"memory"}))


class Inventory(BaseModel):
    """An inventory file: a list of devices whose (type, index) and uuid are unique."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    api_version: Literal["xpushare.io/v1alpha1"] = Field(default="xpushare.io/v1alpha1", alias="apiVersion")
    kind: Literal["DeviceInventory"] = "DeviceInventory"
    devices: list[InventoryDevice]

    @field_validator("devices")
    @classmethod
    def _unique(cls, devices: list[InventoryDevice]) -> list[InventoryDevice]:
        seen_names: set[tuple[str, int]] = set()
        seen_uuids: set[str] = set()
        for position, device in enumerate(devices):
            name = (device.type.value, device.index)
            if name in seen_names:
                kind = device.type.value
                raise ValueError(f"[{position}]: a {kind} device with index {device.index} is listed twice")
            if device.uuid in seen_uuids:
                raise ValueError(f"[{position}]: uuid {device.uuid} is listed twice")
            seen_names.add(name)
            seen_uuids.add(device.uuid)
        return devices


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def format_validation_error(source: str, err: ValidationError) -> str:
    """Every problem of a pydantic error on one line each, as ``<source>: devices[0].memory: <why>``."""
    lines = [f"{source}: {_location(tuple(e['loc']))}: {e['msg']}" for e in err.errors()]
    return "invalid inventory:\n  " + "\n  ".join(lines)


def load_inventory(path: str | Path | None = None) -> Inventory:
    """Read and validate an inventory; None reads the default one shipped in the package."""
    if path is None:
        source = f"package inventory {DEFAULT_INVENTORY}"
        text = resources.files("dra_driver.core.discovery.inventory").joinpath(DEFAULT_INVENTORY).read_text()
    else:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise DiscoveryError(f"read inventory {path}: {err.strerror or err}") from err
    try:
        # The bounded loader of config files: an inventory is small, and aliases must not multiply it.
        documents = [json.loads(text)] if source.endswith(".json") else load_documents(text, "the file")
    except (json.JSONDecodeError, ConfigError) as err:
        raise ConfigError(f"{source}: not valid YAML/JSON: {err}") from err
    if len(documents) != 1:
        raise ConfigError(f"{source}: holds {len(documents)} YAML documents; an inventory is one")
    data = documents[0]
    try:
        return Inventory.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from err


class MockBackend:
    """Devices from an inventory file (the package default when none is given)."""

    name = "mock"

    def __init__(self, inventory: str | Path | None = None) -> None:
        self.inventory_path = Path(inventory) if inventory is not None else None
        load_inventory(self.inventory_path)  # fail at open time on a bad file, as a real backend would

    def discover(self) -> list[Device]:
        return [entry.to_device() for entry in load_inventory(self.inventory_path).devices]

    def check_health(self, devices: list[Device]) -> list[Device]:
        """Health as the file says now; a device no longer listed is unhealthy, an unreadable file
        marks every device unhealthy rather than raising (the health loop must keep running)."""
        try:
            current = {entry.uuid: entry for entry in load_inventory(self.inventory_path).devices}
        except (ConfigError, DiscoveryError) as err:
            log.warning("inventory unreadable during health check", extra={"error": str(err)})
            message = f"inventory unreadable: {err}"
            return [device.with_health(Health.UNHEALTHY, message) for device in devices]
        refreshed = []
        for device in devices:
            entry = current.get(device.uuid)
            if entry is None:
                refreshed.append(device.with_health(Health.UNHEALTHY, "device is no longer in the inventory"))
            else:
                refreshed.append(device.with_health(entry.health, entry.health_message))
        return refreshed

    def close(self) -> None:
        """Nothing to release."""
