"""A host's root as ``xpushare diagnose --host-root`` reads it: the driver files of a healthy node.

Written below a temporary directory, so diagnose runs against a fake host as it runs against ``/host`` in
the plugin's pod; tests break one file at a time to make the broken hosts.
"""

from __future__ import annotations

from pathlib import Path

ASCEND_DRIVER = "24.1.rc2"  # what the npu-smi fixtures' Version says, and the mock inventory's NPUs
NVIDIA_DRIVER = "550.54.15"  # the mock inventory's H100


def write(root: Path, path: str, text: str = "") -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def ascend_host(root: Path, driver: str = ASCEND_DRIVER, cann: str = "8.0.RC2") -> Path:
    """The Ascend HDK's driver and firmware version files, libascend_hal.so and a CANN toolkit."""
    write(root, "usr/local/Ascend/driver/version.info", f"Version={driver}\nascendhal_version=7.35.19\n")
    write(root, "usr/local/Ascend/firmware/version.info", "Version=7.5.0.1.129\n")
    write(root, "usr/local/Ascend/driver/lib64/driver/libascend_hal.so")
    write(root, "usr/local/Ascend/ascend-toolkit/latest/version.cfg", f"version={cann}\n")
    return root


def nvidia_host(root: Path, driver: str = NVIDIA_DRIVER) -> Path:
    """The loaded NVIDIA kernel module's version, as /proc shows it."""
    write(
        root,
        "proc/driver/nvidia/version",
        f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver}  Release Build  (dvs-builder@U16)\n",
    )
    return root
