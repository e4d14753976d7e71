"""NVML memory info and the Ascend runtime: limits seen through nvidia-smi's API and through ACL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.shim.conftest import MIB, claim_usage
from tests.support.shimlib import ShimSetup

ACL_ERROR_RT_MEMORY_ALLOCATION = 207001

NVML_QUERY = """
import ctypes
class Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
class MemoryV2(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("total", ctypes.c_ulonglong), ("reserved", ctypes.c_ulonglong),
                ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
nvml = ctypes.CDLL("libnvidia-ml.so.1")
assert nvml.nvmlInit_v2() == 0
for index in range(2):
    handle, mem, mem2 = ctypes.c_void_p(), Memory(), MemoryV2(version=(2 << 24) | ctypes.sizeof(MemoryV2))
    assert nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) == 0
    assert nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)) == 0
    assert nvml.nvmlDeviceGetMemoryInfo_v2(handle, ctypes.byref(mem2)) == 0
    print(index, mem.total, mem.free, mem.used, mem2.total, mem2.free)
"""


def test_nvml_memory_info_reports_the_limit_and_the_claims_usage(setup: ShimSetup, tmp_path: Path,
                                                                  cuda_client: Path) -> None:
    config = tmp_path / "nvml.conf"
    config.write_text("driver_version=550.54\n[device]\nuuid=GPU-aaaa\nmemory_mib=81920\n"
                      "[device]\nuuid=GPU-bbbb\nmemory_mib=81920\n")
    setup.add_device(0, 20 * MIB, uuid="GPU-bbbb")  # container ordinal 0 is the host's second GPU
    holder = subprocess.Popen([str(cuda_client), "dlsym", "--", "alloc", str(5 * MIB), "ready"],
                              env=setup.env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "alloc rc=0"
        result = setup.run([sys.executable, "-c", NVML_QUERY], extra={"FAKE_NVML_CONFIG": str(config)})
    finally:
        holder.communicate(timeout=10)
    rows = [list(map(int, line.split())) for line in result.stdout.splitlines()]
    assert rows[0] == [0, 81920 * MIB, 81920 * MIB, 0, 81920 * MIB, 81920 * MIB], result.stderr  # untouched
    assert rows[1] == [1, 20 * MIB, 15 * MIB, 5 * MIB, 20 * MIB, 15 * MIB]


def test_acl_allocations_are_limited_at_the_runtime_level(setup: ShimSetup, acl_client: Path) -> None:
    setup.add_device(0, 10 * MIB, uuid="NPU-0")
    result = setup.run([acl_client, "0", "alloc", 6 * MIB, "alloc", 6 * MIB, "rtalloc", 3 * MIB, "info",
                        "rtinfo",
                        "phys", 2 * MIB, "free", "phys", 2 * MIB, "info", "freephys", "info"])
    assert result.codes("alloc") == [0, ACL_ERROR_RT_MEMORY_ALLOCATION]
    assert result.codes("rtalloc") == [0]
    assert result.codes("phys") == [ACL_ERROR_RT_MEMORY_ALLOCATION, 0]
    assert [result.value("info", "free", i) for i in range(3)] == [MIB, 2 * MIB, 4 * MIB]
    assert result.value("info", "total") == 10 * MIB
    assert (result.value("rtinfo", "free"), result.value("rtinfo", "total")) == (MIB, 10 * MIB)
    assert setup.ascend_state.peak() == 9 * MIB  # the refused requests never reached the device
    container = claim_usage(setup.ledger_path())
    assert container.used_bytes == 0
    assert container.peak_bytes == 9 * MIB


def test_acl_fill_stops_at_the_limit_and_launches_pass_through(setup: ShimSetup, acl_client: Path) -> None:
    setup.add_device(0, 8 * MIB + 1, uuid="NPU-0")
    result = setup.run([acl_client, "0", "fill", MIB, "launch", 100])
    assert (result.value("fill", "count"), result.value("fill", "rc")) == (8, ACL_ERROR_RT_MEMORY_ALLOCATION)
    assert setup.ascend_state.launches() == 100
    assert setup.ascend_state.peak() == 8 * MIB


def test_an_npu_no_claim_holds_gets_no_memory(setup: ShimSetup, acl_client: Path) -> None:
    setup.add_device(1, MIB, uuid="NPU-1")  # the claim limits device 1 only
    result = setup.run([acl_client, "0", "alloc", 100 * MIB, "info"], extra={"FAKE_ASCEND_DEVICES": "2"})
    assert result.codes("alloc") == [ACL_ERROR_RT_MEMORY_ALLOCATION]
    assert setup.ascend_state.peak() == 0
    assert "device 0 (number 0) is held by no claim of this container" in result.stderr, result.stderr


ACL_FROM_PYTHON = """
import ctypes
acl = ctypes.CDLL("libascendcl.so")  # RTLD_LOCAL: libruntime.so comes in as its dependency, out of reach
ptr, count, rc = ctypes.c_void_p(), 0, 0
assert acl.aclrtSetDevice(0) == 0
while count < 100 and (rc := acl.aclrtMalloc(ctypes.byref(ptr), ctypes.c_size_t(1 << 20), 0)) == 0:
    count += 1
print(count, rc)
"""


def test_acl_loaded_locally_by_python_is_limited(setup: ShimSetup) -> None:
    """Python loads ACL with RTLD_LOCAL (ctypes, as extension modules like torch_npu's are): libruntime.so
    is then outside RTLD_NEXT's scope, and aclrtMalloc still reaches the real rtMalloc through the shim."""
    setup.add_device(0, 3 * MIB, uuid="NPU-0")
    result = setup.run([sys.executable, "-c", ACL_FROM_PYTHON])
    assert result.stdout.split() == ["3", str(ACL_ERROR_RT_MEMORY_ALLOCATION)], result.stdout + result.stderr
    assert setup.ascend_state.peak() == 3 * MIB
