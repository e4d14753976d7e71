"""The node's accelerator stack, checked the way its users did by hand (``xpushare diagnose``).

Ascend: the driver, firmware and CANN toolkit versions and whether they go together (and with torch_npu
and vllm-ascend where the environment has them: diagnose run inside a workload's container), the driver
that npu-smi or DCMI reports beside the installed one (they differ until the reboot after an upgrade),
each chip's health and device-share mode, libascend_hal.so, ``ASCEND_RT_VISIBLE_DEVICES`` naming a
physical id (error 207004), and where the logs are. NVIDIA: the driver version and the newest CUDA it
runs (against the image's ``CUDA_VERSION``), persistence and MIG mode per GPU, and XID errors in the
kernel's log. The host is read below ``root`` (the plugin's view of the host's root); nothing is
changed. Facts are reported as ``info`` findings, so the output also says what was looked at.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dra_driver.core.devices import Device, DeviceType, Health
from dra_driver.core.fileio import read_regular_file
from dra_driver.core.vendors.ascend.cann import DEFAULT_CANN_INFO, cann_version
from dra_driver.core.vendors.nvidia.profile import APPLICATION_XIDS
from kubeletplugin.compat import (
    cuda_for_driver,
    driver_for_cuda,
    older,
    torch_npu_cann,
    vllm_ascend_requirements,
)
from kubeletplugin.findings import Finding, Severity

ASCEND_DRIVER = "usr/local/Ascend/driver"
ASCEND_FIRMWARE = "usr/local/Ascend/firmware"
HAL_LIBRARIES = ("lib64/driver/libascend_hal.so", "lib64/libascend_hal.so")
DEVICE_LOGS = "var/log/npu/slog"
NVIDIA_VERSION = "proc/driver/nvidia/version"
KERNEL_LOGS = ("var/log/kern.log", "var/log/messages", "var/log/syslog")
MAX_LOG_BYTES = 64 << 20
_XID = re.compile(r"NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+)")
_NVIDIA_DRIVER = re.compile(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)")
_DAVINCI = re.compile(r"davinci(\d+)$")


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Host:
    """What the checks read: the host's files below ``root``, this process's environment, the devices
    discovery found (empty where no backend answered) and, for NVIDIA, each GPU's persistence and MIG
    mode (``gpu_modes``; None: not asked)."""

    root: Path = Path("/")
    environ: Mapping[str, str] = field(default_factory=dict)
    devices: Sequence[Device] = ()
    gpu_modes: Callable[[Device], tuple[bool | None, bool | None]] | None = None
    packages: Callable[[str], str | None] = field(default=_package_version)


def _read(path: Path, limit: int = 1 << 20) -> str | None:
    try:
        return read_regular_file(path, limit).decode(errors="replace")
    except (OSError, ValueError):
        return None


def _key_value(text: str, *keys: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() in keys and value.strip():
            return value.strip().strip('"')
    return ""


def installed_drivers(root: Path) -> set[DeviceType]:
    """The device types whose vendor driver is installed below ``root``."""
    found = {DeviceType.NPU} if (root / ASCEND_DRIVER).exists() else set()
    return found | ({DeviceType.GPU} if (root / NVIDIA_VERSION).exists() else set())


def check_host(host: Host) -> list[Finding]:
    findings: list[Finding] = []
    present = installed_drivers(host.root) | {d.type for d in host.devices}
    has_ascend, has_nvidia = DeviceType.NPU in present, DeviceType.GPU in present
    if has_ascend:
        findings += _ascend(host)
    if has_nvidia:
        findings += _nvidia(host)
    if not has_ascend and not has_nvidia:
        findings.append(
            Finding(
                Severity.WARNING,
                "host",
                "no Ascend or NVIDIA driver found",
                f"install the vendor's driver, or give the host's root (now {host.root})",
            )
        )
    return findings


# --- Ascend -------------------------------------------------------------------------------------------


def _ascend(host: Host) -> list[Finding]:
    root, found = host.root, []
    driver_text = _read(root / ASCEND_DRIVER / "version.info")
    driver = _key_value(driver_text or "", "version")
    if driver:
        found.append(Finding(Severity.INFO, "Ascend driver", f"version {driver}", "-"))
    else:
        found.append(
            Finding(
                Severity.ERROR,
                "Ascend driver",
                f"no version.info in /{ASCEND_DRIVER}",
                "install the NPU driver (Ascend HDK), or mount /usr/local/Ascend into the plugin"
                " (the chart's hostRoot)",
            )
        )
    firmware = _key_value(_read(root / ASCEND_FIRMWARE / "version.info") or "", "version")
    found.append(
        Finding(Severity.INFO, "Ascend firmware", f"version {firmware}", "-")
        if firmware
        else Finding(
            Severity.WARNING,
            "Ascend firmware",
            f"no version.info in /{ASCEND_FIRMWARE}",
            "install the firmware package of the same HDK release as the driver",
        )
    )
    cann = cann_version(tuple(str(root / p.lstrip("/")) for p in DEFAULT_CANN_INFO))
    found.append(
        Finding(
            Severity.INFO,
            "CANN toolkit",
            f"version {cann}" if cann else "not installed on the host (containers bring their own)",
            "-",
        )
    )
    found += _ascend_packages(host, cann)
    if driver and not any((root / ASCEND_DRIVER / lib).exists() for lib in HAL_LIBRARIES):
        found.append(
            Finding(
                Severity.ERROR,
                "Ascend driver",
                "libascend_hal.so is missing",
                f"reinstall the driver: /{ASCEND_DRIVER}/lib64/driver/libascend_hal.so is what "
                "ACL loads first",
            )
        )
    found += _loaded_driver(host, driver)
    for device in (d for d in host.devices if d.type is DeviceType.NPU):
        found += _npu(device)
    found += _visible_devices(host)
    home = host.environ.get("HOME", "/root").lstrip("/")
    plog, slog = root / home / "ascend/log", root / DEVICE_LOGS
    found.append(
        Finding(
            Severity.INFO,
            "Ascend logs",
            f"plog: /{home}/ascend/log ({_there(plog)}); device logs: /{DEVICE_LOGS} "
            f"({_there(slog)}), collected with msnpureport (in the driver's tools)",
            "-",
        )
    )
    return found


def _loaded_driver(host: Host, installed: str) -> list[Finding]:
    """The driver the chips answer with (npu-smi's ``Version``, DCMI's) against the installed one."""
    loaded = sorted({d.driver_version for d in host.devices if d.type is DeviceType.NPU and d.driver_version})
    if not installed or not loaded or [v.lower() for v in loaded] == [installed.lower()]:
        return []
    return [
        Finding(
            Severity.WARNING,
            "Ascend driver",
            f"the chips answer with driver {', '.join(loaded)}, /{ASCEND_DRIVER}/version.info says "
            f"{installed}",
            "a driver upgrade waits for its reboot: reboot the node (the chips run the old driver "
            "until then)",
        )
    ]


def _npu(device: Device) -> list[Finding]:
    """One chip's health and device-share mode, with the npu-smi commands that look closer or fix it."""
    found, subject = [], f"NPU {device.name}"
    npu_id = device.extra.get("npuId") or device.extra.get("cardId") or f"<npu id of {device.name}>"
    health = f"npu-smi info -t health -i {npu_id} -c {device.extra.get('chipId', '0')}"
    if device.health is Health.UNHEALTHY:
        found.append(
            Finding(
                Severity.ERROR,
                subject,
                device.health_message or "unhealthy",
                f"drain the node and check the chip: {health}; device logs with msnpureport",
            )
        )
    elif device.health_message:
        found.append(
            Finding(
                Severity.WARNING,
                subject,
                f"{device.health_message}: a minor alarm, the chip is still used",
                f"{health} names the alarm",
            )
        )
    if not device.shareable:
        found.append(
            Finding(
                Severity.WARNING,
                subject,
                f"{device.extra.get('sharing', 'device-share disabled')}: only whole-device "
                "claims are placed on it",
                f"npu-smi set -t device-share -i {npu_id} -d 1 on the host as root (every chip of "
                "that NPU), then restart the plugin, which reads the mode at start",
            )
        )
    return found


def _ascend_packages(host: Host, cann: str) -> list[Finding]:
    found = []
    torch_npu, vllm_ascend = host.packages("torch_npu"), host.packages("vllm-ascend")
    if torch_npu:
        wanted = torch_npu_cann(torch_npu)
        if wanted and cann and not cann.lower().startswith(tuple(w.lower() for w in wanted)):
            found.append(
                Finding(
                    Severity.WARNING,
                    "torch_npu",
                    f"{torch_npu} is made for CANN {' or '.join(wanted)}, the host has {cann}",
                    "install the torch_npu release for this CANN (Ascend/pytorch README)",
                )
            )
        else:
            found.append(Finding(Severity.INFO, "torch_npu", f"version {torch_npu}", "-"))
    if vllm_ascend:
        needs = vllm_ascend_requirements(vllm_ascend)
        if needs is not None and torch_npu and not torch_npu.startswith(needs.torch_npu):
            found.append(
                Finding(
                    Severity.WARNING,
                    "vllm-ascend",
                    f"{vllm_ascend} needs torch_npu {needs.torch_npu} and CANN {needs.cann}; "
                    f"torch_npu is {torch_npu}",
                    "use the versions of vllm-ascend's release compatibility matrix",
                )
            )
        else:
            found.append(Finding(Severity.INFO, "vllm-ascend", f"version {vllm_ascend}", "-"))
    return found


def _there(path: Path) -> str:
    return "present" if path.exists() else "absent"


def _visible_devices(host: Host) -> list[Finding]:
    value = host.environ.get("ASCEND_RT_VISIBLE_DEVICES", "").strip()
    if not value:
        return []
    chips = sorted(int(m.group(1)) for p in _entries(host.root / "dev") if (m := _DAVINCI.match(p)))
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        return [
            Finding(
                Severity.ERROR,
                "ASCEND_RT_VISIBLE_DEVICES",
                f"{value!r} is not a list of numbers",
                "set it to logical ids 0..n-1, or leave it unset",
            )
        ]
    beyond = [i for i in ids if chips and i >= len(chips)]
    if beyond:
        return [
            Finding(
                Severity.ERROR,
                "ASCEND_RT_VISIBLE_DEVICES",
                f"{value} names {beyond}, but this container has {len(chips)} chip(s) (physical "
                f"{chips}), numbered 0..{len(chips) - 1} inside it: ACL fails with 207004",
                "use logical ids (0..n-1) or leave it unset; the claim already limits the chips",
            )
        ]
    return []


def _entries(directory: Path) -> list[str]:
    try:
        return [p.name for p in directory.iterdir()]
    except OSError:
        return []


# --- NVIDIA -------------------------------------------------------------------------------------------


def _nvidia(host: Host) -> list[Finding]:
    found = []
    driver = _nvidia_driver(host)
    if driver:
        cuda = cuda_for_driver(driver)
        found.append(
            Finding(
                Severity.INFO, "NVIDIA driver", f"version {driver}, runs CUDA up to {cuda or 'unknown'}", "-"
            )
        )
        wanted = host.environ.get("CUDA_VERSION", "")
        needed = driver_for_cuda(wanted) if wanted else None
        if needed and older(driver, needed):
            found.append(
                Finding(
                    Severity.ERROR,
                    "CUDA",
                    f"the image's CUDA {wanted} needs driver {needed} or newer; the node has {driver}",
                    "upgrade the node's driver, or use an image built for an older CUDA",
                )
            )
    else:
        found.append(
            Finding(
                Severity.ERROR,
                "NVIDIA driver",
                f"no driver version (NVML or /{NVIDIA_VERSION})",
                "install the NVIDIA driver or load its kernel module",
            )
        )
    for device in (d for d in host.devices if d.type is DeviceType.GPU):
        if device.health is Health.UNHEALTHY:
            found.append(
                Finding(
                    Severity.ERROR,
                    f"GPU {device.name}",
                    device.health_message or "unhealthy",
                    "drain the node and check the GPU (nvidia-smi -q, the kernel log)",
                )
            )
        if host.gpu_modes is None:
            continue
        persistence, mig = host.gpu_modes(device)
        if persistence is False:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"GPU {device.name}",
                    "persistence mode is off: each first CUDA context re-initialises the GPU, "
                    "and its state is lost between jobs",
                    "run nvidia-persistenced (or nvidia-smi -pm 1)",
                )
            )
        if mig:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"GPU {device.name}",
                    "MIG mode is on: the GPU is split into MIG instances, which XPUShare does not share",
                    "nvidia-smi -i <index> -mig 0 (then reset the GPU), or leave it to the MIG-aware driver",
                )
            )
    found += _xids(host)
    return found


def _nvidia_driver(host: Host) -> str:
    versions = {d.driver_version for d in host.devices if d.type is DeviceType.GPU and d.driver_version}
    if versions:
        return sorted(versions)[0]
    match = _NVIDIA_DRIVER.search(_read(host.root / NVIDIA_VERSION) or "")
    return match.group(1) if match else ""


def _xids(host: Host) -> list[Finding]:
    counts: Counter[tuple[str, int]] = Counter()
    last: dict[tuple[str, int], str] = {}
    for text in (_read(host.root / log, MAX_LOG_BYTES) for log in KERNEL_LOGS):
        for line in (text or "").splitlines():
            match = _XID.search(line)
            if match:
                key = (match.group(1), int(match.group(2)))
                counts[key] += 1
                last[key] = line.strip()
    found = []
    for (bus, xid), count in sorted(counts.items()):
        application = xid in APPLICATION_XIDS
        found.append(
            Finding(
                Severity.WARNING if application else Severity.ERROR,
                f"GPU at {bus}",
                f"XID {xid} x{count} in the kernel log (last: {last[(bus, xid)][-160:]})",
                "an application fault: look at the job that ran then"
                if application
                else "a driver or hardware fault: drain the node, reset the GPU, report it to NVIDIA",
            )
        )
    return found
