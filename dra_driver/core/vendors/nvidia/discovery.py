"""The NVIDIA backend: NVML through nvidia-ml-py (``pynvml``), the only module that imports it.

Loading the library: pynvml opens ``libnvidia-ml.so.1`` through the dynamic loader into a module-level
handle (``pynvml.nvmlLib``) and caches function pointers (``_nvmlGetFunctionPointer_cache``). To honour a
configured path (option ``nvml_library``, env ``XPUSHARE_NVML_LIBRARY``), this module opens the library
itself with ``ctypes.CDLL`` and installs the handle under pynvml's own lock, clearing the pointer cache,
before ``nvmlInit``. Without a path it opens the soname the same way, so the loader's search applies
as it would inside pynvml. One process uses one NVML library at a time: opening a second backend with
a different library while the first is open is refused.

SM count: ``nvmlDeviceGetAttributes`` reports ``multiprocessorCount``; where it answers NOT_SUPPORTED,
the product table in ``catalog`` is used. NUMA node: ``nvmlDeviceGetNumaNodeId`` where the driver has
it, otherwise sysfs. Health: a device whose queries fail (GPU_IS_LOST, RESET_REQUIRED, ...) is reported
UNHEALTHY with NVML's message, never raised. XID critical errors arrive through an NVML event set that
``check_health`` drains without blocking; a device with an XID that points at the hardware or driver
(not one of the application-caused XIDs that NVIDIA's own device plugin also ignores) stays UNHEALTHY
for the life of the backend, since the driver does not report recovery.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from typing import Any

import pynvml

from api.errors import DiscoveryError
from dra_driver.core.devices import Device, Health
from dra_driver.core.discovery import host
from dra_driver.core.vendors.nvidia import catalog
from dra_driver.core.vendors.nvidia.profile import APPLICATION_XIDS, PROFILE
from dra_driver.core.vendors.profile import unanswered_device

log = logging.getLogger(__name__)

SONAME = "libnvidia-ml.so.1"
MAX_EVENTS_PER_CHECK = 64


class _ProcessNvml:
    """pynvml's library handle is process-wide; this tracks which library it holds and who uses it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded: str | None = None
        self.users = 0

    def _install(self, target: str) -> None:
        """Make pynvml use the library at ``target`` (a path or the soname)."""
        if self.users > 0 and self.loaded != target:
            raise DiscoveryError(f"NVML library {target}: this process already uses {self.loaded}")
        if self.loaded == target and pynvml.nvmlLib is not None:
            return
        if "/" in target and not Path(target).exists():
            raise DiscoveryError(f"NVML library {target}: no such file")
        try:
            library = ctypes.CDLL(target)
        except OSError as err:
            raise DiscoveryError(f"load NVML library {target}: {err}") from err
        with pynvml.libLoadLock:
            pynvml.nvmlLib = library
            pynvml._nvmlGetFunctionPointer_cache.clear()
        self.loaded = target

    def open(self, target: str) -> None:
        with self.lock:
            self._install(target)
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as err:
                raise DiscoveryError(f"NVML library {target}: nvmlInit failed: {_error_text(err)}") from err
            self.users += 1

    def close(self) -> None:
        with self.lock:
            if self.users == 0:
                return
            self.users -= 1
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError as err:
                log.warning("nvmlShutdown failed", extra={"error": _error_text(err)})


_NVML = _ProcessNvml()


def _error_text(err: Exception) -> str:
    if isinstance(err, pynvml.NVMLError):
        return f"{err} (NVML error {err.value})"
    return str(err)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _cuda_version(raw: int) -> str:
    """NVML's integer CUDA version (12040) as ``12.4``."""
    return f"{raw // 1000}.{(raw % 1000) // 10}" if raw > 0 else ""


def _optional(query: Any, *args: Any) -> Any:
    """Call an NVML query that older drivers or some products do not support; None when unsupported."""
    try:
        return query(*args)
    except (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound):
        return None


class NvidiaBackend:
    """NVIDIA GPUs as NVML reports them."""

    name = PROFILE.backend

    def __init__(self, nvml_library: str | None = None, sysfs_root: str | Path = "/sys") -> None:
        self.library = nvml_library or SONAME
        self.sysfs_root = Path(sysfs_root)
        _NVML.open(self.library)
        self._closed = False
        self._xid_failures: dict[str, str] = {}
        self._events = self._create_event_set()

    @staticmethod
    def _create_event_set() -> Any:
        """An event set for XID errors, or None: health then rests on polling alone."""
        try:
            return _optional(pynvml.nvmlEventSetCreate)
        except pynvml.NVMLError as err:
            log.warning("NVML events unavailable", extra={"error": _error_text(err)})
            return None

    def discover(self) -> list[Device]:
        try:
            count = pynvml.nvmlDeviceGetCount()
            driver = _text(pynvml.nvmlSystemGetDriverVersion())
            cuda = _cuda_version(pynvml.nvmlSystemGetCudaDriverVersion())
        except pynvml.NVMLError as err:
            message = f"NVML library {self.library}: enumeration failed: {_error_text(err)}"
            raise DiscoveryError(message) from err
        return [self._describe(index, driver, cuda) for index in range(count)]

    def _describe(self, index: int, driver: str, cuda: str) -> Device:
        try:
            return self._query(index, driver, cuda)
        except pynvml.NVMLError as err:
            message = f"NVML: device {index} does not answer: {_error_text(err)}"
            log.warning("GPU does not answer during discovery", extra={"index": index, "error": message})
            placeholder = unanswered_device(
                PROFILE, uuid=f"GPU-unknown-{index}", index=index, minor=index, versions=(driver, cuda)
            )
            return placeholder.with_health(Health.UNHEALTHY, message)

    def _query(self, index: int, driver: str, cuda: str) -> Device:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        if self._events is not None:
            _optional(
                pynvml.nvmlDeviceRegisterEvents, handle, pynvml.nvmlEventTypeXidCriticalError, self._events
            )
        product = _text(pynvml.nvmlDeviceGetName(handle))
        minor = pynvml.nvmlDeviceGetMinorNumber(handle)
        bus_id = host.normalize_bus_id(_text(pynvml.nvmlDeviceGetPciInfo(handle).busId))
        numa = _optional(pynvml.nvmlDeviceGetNumaNodeId, handle)
        attributes = _optional(pynvml.nvmlDeviceGetAttributes, handle)
        sm_count = catalog.nvidia_sm_count(product) if attributes is None else attributes.multiprocessorCount
        if sm_count == 0:
            log.warning("SM count unknown for this product", extra={"product": product})
        return Device(
            type=PROFILE.device_type,
            vendor=PROFILE.vendor,
            model=catalog.nvidia_model(product),
            uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
            index=pynvml.nvmlDeviceGetIndex(handle),
            memory_bytes=pynvml.nvmlDeviceGetMemoryInfo(handle).total,
            cores=sm_count,
            device_node=PROFILE.device_node(minor),
            minor=minor,
            pci_bus_id=bus_id,
            numa_node=numa if numa is not None else host.numa_node(bus_id, self.sysfs_root),
            driver_version=driver,
            runtime_version=cuda,
            scheduling=PROFILE.scheduling,
            extra={"productName": product},
        )

    def check_health(self, devices: list[Device]) -> list[Device]:
        self._drain_xid_events()
        return [self._health(device) for device in devices]

    def _drain_xid_events(self) -> None:
        """Record the XID critical errors that arrived since the last check (never blocks)."""
        if self._events is None:
            return
        for _ in range(MAX_EVENTS_PER_CHECK):
            try:
                event = pynvml.nvmlEventSetWait_v2(self._events, 0)
                uuid = _text(pynvml.nvmlDeviceGetUUID(event.device))
            except pynvml.NVMLError_Timeout:
                return
            except pynvml.NVMLError as err:
                log.warning("reading NVML events failed", extra={"error": _error_text(err)})
                return
            xid = int(event.eventData)
            log.warning("XID critical error", extra={"uuid": uuid, "xid": xid})
            if xid not in APPLICATION_XIDS:
                self._xid_failures[uuid] = f"NVML: XID {xid} critical error reported by the driver"

    def modes(self, device: Device) -> tuple[bool | None, bool | None]:
        """The GPU's persistence mode and MIG mode (None: the driver does not say), for diagnosis."""
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(device.uuid)
            persistence = _optional(pynvml.nvmlDeviceGetPersistenceMode, handle)
            mig = _optional(pynvml.nvmlDeviceGetMigMode, handle)
        except pynvml.NVMLError as err:
            log.warning("NVML modes unreadable", extra={"uuid": device.uuid, "error": _error_text(err)})
            return None, None
        return (None if persistence is None else bool(persistence),
                None if mig is None else bool(mig[0]))

    def _health(self, device: Device) -> Device:
        if device.uuid in self._xid_failures:
            return device.with_health(Health.UNHEALTHY, self._xid_failures[device.uuid])
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(device.uuid)
            pynvml.nvmlDeviceGetMemoryInfo(handle)
        except pynvml.NVMLError as err:
            return device.with_health(Health.UNHEALTHY, f"NVML: {_error_text(err)}")
        return device.with_health(Health.HEALTHY)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._events is not None:
            try:
                pynvml.nvmlEventSetFree(self._events)
            except pynvml.NVMLError as err:
                log.warning("nvmlEventSetFree failed", extra={"error": _error_text(err)})
        _NVML.close()
