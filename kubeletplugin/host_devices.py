"""The devices this node's discovery backend finds, for ``xpushare diagnose``.

The backend is opened the plugin's way (``XPUSHARE_DISCOVERY_BACKEND`` and the backends' ``XPUSHARE_*``
options from the environment, as the chart sets them in the plugin's pod), so diagnose sees what the
plugin saw at its start, and fails where it failed. Each failure is a finding with the vendor's fix:
when a vendor's driver is installed below the host root, no answering backend is an error (the plugin
cannot start there either); on a host without one it is a fact. The backend is closed before this
returns; what the checks need of it later (each GPU's persistence and MIG mode) is read first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field

from api.errors import XPUShareError
from dra_driver.core.devices import Device, DeviceType
from dra_driver.core.discovery.base import backend_from_settings
from kubeletplugin.findings import Finding, Severity

Modes = tuple[bool | None, bool | None]  # a GPU's persistence and MIG mode (None: not known)

# What to do when a vendor's management interface does not open, or opens and does not answer.
_OPEN_HINTS: Mapping[DeviceType, str] = {
    DeviceType.NPU: "the plugin finds NPUs through DCMI (/usr/local/dcmi/libdcmi.so) or npu-smi (on PATH, or "
    "XPUSHARE_NPU_SMI): mount them into the plugin's pod (chart ascend.driverMounts), or point the "
    "variables at them",
    DeviceType.GPU: "the plugin finds GPUs through NVML (libnvidia-ml.so.1): mount the driver's libraries "
    "into the plugin's pod (chart nvidia.libraries), or set XPUSHARE_NVML_LIBRARY",
}
_ANSWER_HINTS: Mapping[str, str] = {
    "ascend": "run npu-smi info on the host: 'dcmi module initialize failed. ret is -8005' after a driver or "
    "firmware upgrade means it waits for its reboot; a hang points at a stuck driver or chip (dmesg, "
    "device logs in /var/log/npu/slog); the plugin fails the same way at its start",
    "nvidia": "run nvidia-smi on the host and look for XID errors in the kernel log; the plugin fails the "
    "same way at its start",
}


@dataclass(frozen=True)
class Discovered:
    """What discovery found: the backend's name ("" when none opened or it failed), its devices, each
    GPU's modes by UUID (where the backend reads them) and the findings about discovery itself."""

    backend: str = ""
    devices: tuple[Device, ...] = ()
    modes: Mapping[str, Modes] | None = None
    findings: tuple[Finding, ...] = field(default=())

    def gpu_modes(self) -> Callable[[Device], Modes] | None:
        """The modes as the host checks ask for them; None where the backend does not read them."""
        modes = self.modes
        if modes is None:
            return None
        return lambda device: modes.get(device.uuid, (None, None))


def discover(environ: Mapping[str, str], installed: Set[DeviceType]) -> Discovered:
    """Open the backend from ``environ`` and enumerate; ``installed``: the vendors whose driver the host
    has (they decide whether a backend that does not open is an error, and which fix to name)."""
    try:
        backend = backend_from_settings({}, environ=environ)
    except XPUShareError as err:
        if not installed:
            return Discovered(
                findings=(Finding(Severity.INFO, "discovery", f"no backend answered: {err}", "-"),)
            )
        hint = "; ".join(_OPEN_HINTS[t] for t in sorted(installed))
        return Discovered(
            findings=(Finding(Severity.ERROR, "discovery", f"no backend answered: {err}", hint),)
        )
    try:
        devices = tuple(backend.discover())
        read_modes = getattr(backend, "modes", None)
        modes = None
        if callable(read_modes):
            modes = {d.uuid: read_modes(d) for d in devices if d.type is DeviceType.GPU}
    except XPUShareError as err:
        hint = _ANSWER_HINTS.get(backend.name, "check the vendor's driver on the host")
        return Discovered(findings=(Finding(Severity.ERROR, "discovery", f"{backend.name}: {err}", hint),))
    finally:
        backend.close()
    fact = Finding(Severity.INFO, "discovery", f"{backend.name}: {len(devices)} device(s)", "-")
    return Discovered(backend.name, devices, modes, (fact,))
