"""Huawei Ascend's profile: NPUs found through DCMI or npu-smi, published as ``npu`` devices of
vendor ``huawei``.

A container gets its NPUs' nodes (``/dev/davinci<physical id>``), the control nodes, read-only mounts of
the driver's files that exist on the host: the Ascend Docker Runtime's base list (driver libraries and
headers, DCMI, npu-smi, the queue scheduler's directory) plus what distributed jobs and device logs
need (``hccn_tool`` and ``msnpureport`` in the driver's tools, ``/etc/hccn.conf``, the HCCL root info
and topology), a hook that makes the container's loader cache list the driver's libraries (the image's
own ``LD_LIBRARY_PATH`` is left alone), and ``ASCEND_VISIBLE_DEVICES`` with the physical ids, which the
Ascend Docker Runtime, where it is the default runtime, reads as the same chips: it adds the same nodes
and base mounts again, which the container runtime merges. ``ASCEND_RT_VISIBLE_DEVICES`` is never set:
the runtime numbers the chips inside the container from 0, so a physical id there fails (207004).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from dra_driver.core.devices import DeviceType
from dra_driver.core.vendors.profile import (
    SYSFS_ROOT_OPTION,
    BaseProfile,
    ClaimedDevice,
    ContainerEdits,
    VendorHost,
    fractions,
)

if TYPE_CHECKING:
    from dra_driver.core.discovery.base import DeviceBackend

CONTROL_NODES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
DRIVER_FILES = (
    # The Ascend Docker Runtime's base.list (mind-cluster ascend-docker-runtime build/scripts/base.list)
    "/usr/local/Ascend/driver/lib64",
    "/usr/local/Ascend/driver/include",
    "/usr/local/dcmi",
    "/usr/local/bin/npu-smi",
    "/var/queue_schedule",
    # Versions, and what HCCL jobs and device-log collection use
    "/usr/local/Ascend/driver/version.info",
    "/etc/ascend_install.info",
    "/usr/local/Ascend/driver/tools",
    "/etc/hccn.conf",
    "/etc/hccl_rootinfo.json",
    "/usr/local/Ascend/driver/topo",
)
LIBRARY_DIRS = (
    "/usr/local/Ascend/driver/lib64",
    "/usr/local/Ascend/driver/lib64/common",
    "/usr/local/Ascend/driver/lib64/driver",
)


class AscendProfile(BaseProfile):
    """The facts about Ascend NPUs (see ``VendorProfile``)."""

    device_type = DeviceType.NPU
    vendor = "huawei"
    backend = "ascend"
    backend_options: Mapping[str, str] = {
        "dcmi_library": "XPUSHARE_DCMI_LIBRARY",
        "npu_smi": "XPUSHARE_NPU_SMI",
        "ascend_source": "XPUSHARE_ASCEND_SOURCE",
        "cann_info": "XPUSHARE_CANN_INFO",
        "npu_smi_timeout": "XPUSHARE_NPU_SMI_TIMEOUT",
        **SYSFS_ROOT_OPTION,
    }
    # Nodes are named by the physical id (the minor); a device's index is the runtime's logical id.
    node_prefix = "/dev/davinci"
    driver_files = DRIVER_FILES
    library_dirs = LIBRARY_DIRS
    cores_attribute = "aicoreCount"
    # The chips' own hard-slicing templates: 910 by quarters, 310P by sevenths (its 7 AI cores).
    partition_sizes: ClassVar[Mapping[str, tuple[Fraction, ...]]] = {
        "npu": fractions("1/4", "1/2", "1"),
        "ascend910": fractions("1/4", "1/2", "1"),
        "ascend310p": fractions("1/7", "2/7", "4/7"),
    }
    # One cut of each chip that the scheduler can place at scale: four quarters (the 910's smallest
    # template), the 310P as its three templates side by side.
    fixed_partitions: ClassVar[Mapping[str, tuple[Fraction, ...]]] = {
        "npu": fractions("1/4", "1/4", "1/4", "1/4"),
        "ascend910": fractions("1/4", "1/4", "1/4", "1/4"),
        "ascend310p": fractions("4/7", "2/7", "1/7"),
    }

    def open_backend(self, **options: Any) -> DeviceBackend:
        # Imported here so that only a node that asks for Ascend's backend loads cffi and DCMI.
        from dra_driver.core.vendors.ascend.discovery import AscendBackend

        return AscendBackend(**options)

    def shared_edits(self, devices: Sequence[ClaimedDevice], host: VendorHost) -> ContainerEdits:
        physical_ids = sorted({device.minor for device in devices})
        visible = "ASCEND_VISIBLE_DEVICES=" + ",".join(str(i) for i in physical_ids)
        return ContainerEdits(env=(visible,), device_nodes=CONTROL_NODES, mounts=host.mounts,
                              library_dirs=host.library_dirs)


PROFILE = AscendProfile()
