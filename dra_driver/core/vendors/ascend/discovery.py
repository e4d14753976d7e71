"""The Ascend backend: NPUs from DCMI (``libdcmi.so``), or from ``npu-smi`` where DCMI is missing.

Identity: ``index`` is the logical id that the Ascend runtime counts devices by; ``minor`` is the
physical id, which names the device node ``/dev/davinci<phy_id>`` and ``ASCEND_VISIBLE_DEVICES``.
``shareable`` is the chip's device-share mode (soft sharing of one NPU by several containers needs
it); a driver that cannot report the mode yields False, with the reason in ``extra["sharing"]``. Each
npu-smi call waits ``npu_smi_timeout`` seconds at most, and once one has hung no device-share query is
sent again in that discovery: a stuck driver would hang each of them.
The runtime version is the installed CANN toolkit's. Health follows DCMI's scale: 0 normal, 1 minor
alarm (still healthy, with a message), 2 major, 3 critical, 0xFFFFFFFF absent; a chip whose queries fail
is UNHEALTHY with the failing call and code in the message.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

from api.errors import ConfigError, DiscoveryError
from dra_driver.core.devices import MIB, Device, Health
from dra_driver.core.discovery import host
from dra_driver.core.vendors.ascend import cann, catalog, npusmi
from dra_driver.core.vendors.ascend.dcmi import DcmiCallError, DcmiLibrary
from dra_driver.core.vendors.ascend.profile import PROFILE
from dra_driver.core.vendors.profile import unanswered_device

log = logging.getLogger(__name__)

SOURCES = ("auto", "dcmi", "npu-smi")
DEFAULT_NPU_SMI = "npu-smi"
_DCMI_HEALTH = {
    0: "normal",
    1: "minor alarm",
    2: "major alarm",
    3: "critical alarm",
    0xFFFFFFFF: "device absent",
}
_NPU_SMI_HEALTHY = {"OK", "WARNING"}
MAX_NPU_SMI_TIMEOUT_S = 600.0


def health_from_dcmi(code: int) -> tuple[Health, str]:
    """DCMI's health value as the kubelet's health and a message ("" when normal)."""
    label = _DCMI_HEALTH.get(code, f"unknown health value {code}")
    if code == 0:
        return Health.HEALTHY, ""
    if code == 1:
        return Health.HEALTHY, f"DCMI health: {label}"
    return Health.UNHEALTHY, f"DCMI health: {label}"


def _seconds(value: float | str | None) -> float:
    """The ``npu_smi_timeout`` option (a number, or its text from the environment) in seconds."""
    if value is None:
        return npusmi.TIMEOUT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"npu_smi_timeout: {value!r} is not a number of seconds") from err
    if not 0 < seconds <= MAX_NPU_SMI_TIMEOUT_S:
        raise ConfigError(f"npu_smi_timeout: {seconds:g} s is outside 0..{MAX_NPU_SMI_TIMEOUT_S:g} s")
    return seconds


def _npu_smi_uuid(chip: npusmi.NpuSmiChip) -> str:
    """npu-smi shows no die id; the PCI address is the stable identity that it does show."""
    return f"npu-{host.normalize_bus_id(chip.bus_id) or chip.physical_id}"


class AscendBackend:
    """Ascend NPUs; ``source`` tells whether DCMI or npu-smi answered."""

    name = PROFILE.backend

    def __init__(
        self,
        dcmi_library: str | None = None,
        npu_smi: str | None = None,
        ascend_source: str = "auto",
        sysfs_root: str | Path = "/sys",
        cann_info: str | None = None,
        *,
        npu_smi_timeout: float | str | None = None,
    ) -> None:
        if ascend_source not in SOURCES:
            raise ConfigError(f"ascend_source: {ascend_source!r} is not one of {', '.join(SOURCES)}")
        self.sysfs_root = Path(sysfs_root)
        self.cann_info = cann_info
        self.npu_smi_timeout_s = _seconds(npu_smi_timeout)
        self._dcmi: DcmiLibrary | None = None
        self._npu_smi = ""
        self._locations: dict[str, tuple[int, int]] = {}
        self._open(dcmi_library, npu_smi, ascend_source)

    @property
    def source(self) -> str:
        return "dcmi" if self._dcmi is not None else "npu-smi"

    def _open(self, dcmi_library: str | None, npu_smi: str | None, source: str) -> None:
        failures: list[str] = []
        if source in {"auto", "dcmi"}:
            try:
                self._dcmi = DcmiLibrary(dcmi_library)
                return
            except DiscoveryError as err:
                if source == "dcmi":
                    raise
                failures.append(str(err))
        tool = npu_smi or DEFAULT_NPU_SMI
        found = shutil.which(tool)
        if found is None:
            failures.append(f"npu-smi: {tool} not found")
            raise DiscoveryError("no Ascend management interface: " + "; ".join(failures))
        if failures:
            log.info("DCMI unavailable, using npu-smi", extra={"reason": failures[0], "npu_smi": found})
        self._npu_smi = found

    def _runtime_version(self) -> str:
        return cann.cann_version(self.cann_info) if self.cann_info else cann.cann_version()

    def discover(self) -> list[Device]:
        devices = self._discover_dcmi() if self._dcmi is not None else self._discover_npu_smi()
        return sorted(devices, key=lambda device: device.index)

    # --- DCMI -------------------------------------------------------------------------------------

    def _discover_dcmi(self) -> list[Device]:
        assert self._dcmi is not None
        try:
            driver = self._dcmi.driver_version()
            cards = self._dcmi.card_ids()
            chips = [(card, chip) for card in cards for chip in range(self._dcmi.device_count(card))]
        except DcmiCallError as err:
            raise DiscoveryError(f"DCMI library {self._dcmi.path}: enumeration failed: {err}") from err
        runtime = self._runtime_version()
        devices = []
        for card, chip in chips:
            device = self._describe_dcmi(card, chip, driver, runtime)
            self._locations[device.uuid] = (card, chip)
            devices.append(device)
        return devices

    def _describe_dcmi(self, card: int, chip: int, driver: str, runtime: str) -> Device:
        assert self._dcmi is not None
        logic = self._dcmi.logic_id(card, chip)
        try:
            physical = self._dcmi.physical_id(logic)
        except DcmiCallError:
            physical = logic
        base = unanswered_device(
            PROFILE,
            uuid=f"npu-card{card}-chip{chip}",
            index=logic,
            minor=physical,
            versions=(driver, runtime),
            extra={"cardId": str(card), "chipId": str(chip)},
        )
        try:
            return self._fill_dcmi(base, card, chip)
        except DcmiCallError as err:
            message = f"DCMI: card {card} chip {chip} does not answer: {err}"
            log.warning("NPU does not answer during discovery", extra={"error": message})
            return base.with_health(Health.UNHEALTHY, message)

    def _fill_dcmi(self, base: Device, card: int, chip: int) -> Device:
        assert self._dcmi is not None
        info = self._dcmi.chip_info(card, chip)
        memory_mib = self._memory_mib(card, chip)
        bus_id = self._dcmi.pcie_info(card, chip).bus_id
        health, message = health_from_dcmi(self._dcmi.health(card, chip))
        shareable, sharing = self._share_mode(card, chip)
        return replace(
            base,
            model=catalog.ascend_model(info.chip_name),
            uuid=self._dcmi.vdie_id(card, chip),
            memory_bytes=memory_mib * MIB,
            cores=info.aicore_count or catalog.ascend_aicores(info.chip_name),
            pci_bus_id=bus_id,
            numa_node=host.numa_node(bus_id, self.sysfs_root),
            health=health,
            health_message=message,
            shareable=shareable,
            extra={**base.extra, "chipVersion": info.chip_version, "sharing": sharing},
        )

    def _memory_mib(self, card: int, chip: int) -> int:
        """HBM on chips that have it (910 family), device DDR otherwise (310P)."""
        assert self._dcmi is not None
        try:
            hbm = self._dcmi.hbm_mib(card, chip)
        except DcmiCallError as err:
            if err.code != -8255:
                raise
            hbm = 0
        return hbm or self._dcmi.memory_mib(card, chip)

    def _share_mode(self, card: int, chip: int) -> tuple[bool, str]:
        assert self._dcmi is not None
        try:
            enabled = self._dcmi.share_enabled(card, chip)
        except DcmiCallError as err:
            return False, f"unknown ({err})"
        return enabled, "device-share enabled" if enabled else "device-share disabled"

    # --- npu-smi ----------------------------------------------------------------------------------

    def _discover_npu_smi(self) -> list[Device]:
        info = npusmi.query_info(self._npu_smi, self.npu_smi_timeout_s)
        runtime = self._runtime_version()
        ordered = sorted(info.chips, key=lambda chip: chip.physical_id)
        devices = []
        hung = ""  # why device-share is no longer asked: an earlier query did not answer
        for logical, chip in enumerate(ordered):
            share: bool | None = None
            if not hung:
                try:
                    share = npusmi.query_share(
                        self._npu_smi, chip.npu_id, chip.chip_id, self.npu_smi_timeout_s
                    )
                except npusmi.NpuSmiTimeoutError as err:
                    hung = f"unknown ({err})"
            device = self._describe_npu_smi(chip, logical, info.version, runtime, share=share, why=hung)
            self._locations[device.uuid] = (chip.npu_id, chip.chip_id)
            devices.append(device)
        return devices

    def _describe_npu_smi(
        self,
        chip: npusmi.NpuSmiChip,
        logical: int,
        driver: str,
        runtime: str,
        *,
        share: bool | None,
        why: str,
    ) -> Device:
        """One chip; ``share`` is its device-share mode (None: unknown, ``why`` says why where known)."""
        bus_id = host.normalize_bus_id(chip.bus_id)
        healthy = chip.health.upper() in _NPU_SMI_HEALTHY
        sharing = (
            (why or "unknown (npu-smi cannot report device-share)")
            if share is None
            else ("device-share enabled" if share else "device-share disabled")
        )
        return Device(
            type=PROFILE.device_type,
            vendor=PROFILE.vendor,
            model=catalog.ascend_model(chip.name),
            uuid=_npu_smi_uuid(chip),
            index=logical,
            memory_bytes=chip.memory_mib * MIB,
            cores=catalog.ascend_aicores(chip.name),
            device_node=PROFILE.device_node(chip.physical_id),
            minor=chip.physical_id,
            pci_bus_id=bus_id,
            numa_node=host.numa_node(bus_id, self.sysfs_root),
            driver_version=driver,
            runtime_version=runtime,
            health=Health.HEALTHY if healthy else Health.UNHEALTHY,
            health_message="" if chip.health.upper() == "OK" else f"npu-smi health: {chip.health}",
            shareable=bool(share),
            extra={"npuId": str(chip.npu_id), "chipId": str(chip.chip_id), "sharing": sharing},
        )

    # --- health -----------------------------------------------------------------------------------

    def check_health(self, devices: list[Device]) -> list[Device]:
        if self._dcmi is None:
            return self._health_npu_smi(devices)
        return [self._health_dcmi(device) for device in devices]

    def _health_dcmi(self, device: Device) -> Device:
        assert self._dcmi is not None
        location = self._locations.get(device.uuid)
        if location is None:
            return device.with_health(Health.UNHEALTHY, "device was not found by discovery")
        try:
            health, message = health_from_dcmi(self._dcmi.health(*location))
            self._dcmi.hbm_mib(*location)
        except DcmiCallError as err:
            return device.with_health(Health.UNHEALTHY, f"DCMI: device stopped answering: {err}")
        return device.with_health(health, message)

    def _health_npu_smi(self, devices: list[Device]) -> list[Device]:
        try:
            info = npusmi.query_info(self._npu_smi, self.npu_smi_timeout_s)
            chips = {_npu_smi_uuid(chip): chip for chip in info.chips}
        except DiscoveryError as err:
            return [device.with_health(Health.UNHEALTHY, str(err)) for device in devices]
        refreshed = []
        for device in devices:
            chip = chips.get(device.uuid)
            if chip is None:
                refreshed.append(device.with_health(Health.UNHEALTHY, "npu-smi no longer lists the device"))
            elif chip.health.upper() in _NPU_SMI_HEALTHY:
                message = "" if chip.health.upper() == "OK" else f"npu-smi health: {chip.health}"
                refreshed.append(device.with_health(Health.HEALTHY, message))
            else:
                refreshed.append(device.with_health(Health.UNHEALTHY, f"npu-smi health: {chip.health}"))
        return refreshed

    def close(self) -> None:
        """DCMI has no shutdown call and the library stays mapped for the process; nothing to release."""
