"""The NVIDIA backend, run for real through pynvml against the fake libnvidia-ml.so.1."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pynvml
import pytest

from api.errors import DiscoveryError
from dra_driver.core.devices import GIB, MIB, DeviceType, Health, Scheduling
from dra_driver.core.vendors.nvidia.discovery import NvidiaBackend
from tests.support.fakevendor import FakeGpu, nvml_config

SECOND_GPU = FakeGpu(
    name="NVIDIA A100-SXM4-80GB",
    uuid="GPU-a100-0002",
    memory_mib=81920,
    bus_id="00000000:B7:00.0",
    minor=3,
    numa=1,
    sm_count=108,
)


OpenBackend = Callable[..., NvidiaBackend]


@pytest.fixture
def open_backend(fake_nvml_library: Path, nvml_config_path: Path) -> Iterator[OpenBackend]:
    """Open a backend on the fake NVML showing ``gpus``; every one is closed even when the test fails."""
    opened: list[NvidiaBackend] = []

    def open_(gpus: Sequence[FakeGpu] = (FakeGpu(),), **options: Any) -> NvidiaBackend:
        nvml_config(gpus).write(nvml_config_path)
        opened.append(NvidiaBackend(nvml_library=str(fake_nvml_library), **options))
        return opened[-1]

    yield open_
    for backend in opened:
        backend.close()


def test_enumerates_every_gpu_with_nvml_values(open_backend: OpenBackend) -> None:
    backend = open_backend([FakeGpu(), SECOND_GPU])
    h100, a100 = backend.discover()
    assert (h100.type, h100.vendor, h100.model, h100.index) == (DeviceType.GPU, "nvidia", "H100-SXM5-80GB", 0)
    assert h100.uuid == "GPU-3f1c9a52-8d0e-4b7a-9c61-2e5d7f0a4b19"
    assert h100.memory_bytes == 81559 * MIB
    assert (h100.cores, h100.device_node, h100.minor) == (132, "/dev/nvidia0", 0)
    assert (h100.pci_bus_id, h100.numa_node) == ("0000:18:00.0", 0)
    assert (h100.driver_version, h100.runtime_version) == ("550.54.15", "12.4")
    assert h100.health is Health.HEALTHY
    assert h100.extra["productName"] == "NVIDIA H100 80GB HBM3"
    assert h100.scheduling is Scheduling.TIME_SLICED  # contexts share it by preemptive time slices
    assert (a100.model, a100.index, a100.minor, a100.device_node) == ("A100-SXM4-80GB", 1, 3, "/dev/nvidia3")
    assert (a100.cores, a100.numa_node, a100.pci_bus_id) == (108, 1, "0000:b7:00.0")
    assert a100.memory_bytes == 80 * GIB


def test_sm_count_comes_from_the_model_table_when_attributes_are_not_supported(
    open_backend: OpenBackend,
) -> None:
    backend = open_backend([FakeGpu(sm_count=0)])
    assert backend.discover()[0].cores == 132


def test_numa_node_comes_from_sysfs_when_nvml_does_not_report_it(
    open_backend: OpenBackend, tmp_path: Path
) -> None:
    device_dir = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:18:00.0"
    device_dir.mkdir(parents=True)
    (device_dir / "numa_node").write_text("3\n")
    backend = open_backend([FakeGpu(numa=-1)], sysfs_root=tmp_path / "sys")
    assert backend.discover()[0].numa_node == 3


def test_missing_library_is_a_discovery_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "libnvidia-ml.so.1"
    with pytest.raises(DiscoveryError, match=rf"NVML library {missing}: no such file"):
        NvidiaBackend(nvml_library=str(missing))


def test_a_file_that_is_not_a_library_is_a_discovery_error(tmp_path: Path) -> None:
    bogus = tmp_path / "libnvidia-ml.so.1"
    bogus.write_text("not an ELF file")
    with pytest.raises(DiscoveryError, match=r"load NVML library .*libnvidia-ml.so.1"):
        NvidiaBackend(nvml_library=str(bogus))


def test_init_failure_is_a_discovery_error_with_nvml_reason(
    fake_nvml_library: Path, nvml_config_path: Path
) -> None:
    nvml_config(init_error=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH).write(nvml_config_path)
    with pytest.raises(DiscoveryError, match=r"nvmlInit failed: .*version mismatch.*\(NVML error 18\)"):
        NvidiaBackend(nvml_library=str(fake_nvml_library))


def test_host_without_driver_is_a_discovery_error(
    fake_nvml_library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_NVML_CONFIG", raising=False)
    with pytest.raises(DiscoveryError, match=r"Driver Not Loaded"):
        NvidiaBackend(nvml_library=str(fake_nvml_library))


def test_gpu_lost_during_discovery_is_listed_unhealthy(open_backend: OpenBackend) -> None:
    backend = open_backend([FakeGpu(), replace(SECOND_GPU, lost=1)])
    healthy, lost = backend.discover()
    assert healthy.health is Health.HEALTHY
    assert lost.health is Health.UNHEALTHY
    assert "GPU is lost" in lost.health_message
    assert lost.index == 1


def test_gpu_lost_after_discovery_turns_unhealthy_and_recovers(
    nvml_config_path: Path, open_backend: OpenBackend
) -> None:
    backend = open_backend([FakeGpu(), SECOND_GPU])
    devices = backend.discover()
    nvml_config([FakeGpu(lost=1), SECOND_GPU]).write(nvml_config_path)
    sick, fine = backend.check_health(devices)
    assert (sick.health, fine.health) == (Health.UNHEALTHY, Health.HEALTHY)
    assert sick.health_message == "NVML: GPU is lost (NVML error 15)"
    assert devices[0].health is Health.HEALTHY, "check_health returns copies"
    nvml_config([FakeGpu(), SECOND_GPU]).write(nvml_config_path)
    assert [d.health for d in backend.check_health(devices)] == [Health.HEALTHY, Health.HEALTHY]


def test_a_second_library_in_the_same_process_is_refused(
    fake_nvml_library: Path, open_backend: OpenBackend, tmp_path: Path
) -> None:
    open_backend()
    other = tmp_path / "other" / "libnvidia-ml.so.1"
    other.parent.mkdir()
    shutil.copyfile(fake_nvml_library, other)
    with pytest.raises(DiscoveryError, match="this process already uses"):
        NvidiaBackend(nvml_library=str(other))


def test_fake_answers_both_memory_info_versions(open_backend: OpenBackend) -> None:
    """The enforcing shim's tests rely on the fake answering the v1 and v2 memory queries as NVML does."""
    open_backend([FakeGpu(used_mib=1024)])
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    v1 = pynvml.nvmlDeviceGetMemoryInfo(handle)
    v2 = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    assert (v1.total, v1.used, v1.free) == (81559 * MIB, 1024 * MIB, 80535 * MIB)
    assert (v2.total, v2.used, v2.free, v2.reserved) == (81559 * MIB, 1024 * MIB, 80535 * MIB, 0)
    with pytest.raises(pynvml.NVMLError_ArgumentVersionMismatch):
        pynvml.nvmlDeviceGetMemoryInfo(handle, version=0x01000028)


def test_close_is_idempotent(fake_nvml_library: Path, nvml_config_path: Path) -> None:
    nvml_config().write(nvml_config_path)
    backend = NvidiaBackend(nvml_library=str(fake_nvml_library))
    backend.close()
    backend.close()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        pynvml.nvmlDeviceGetCount()


def test_critical_xid_marks_the_gpu_unhealthy_for_good(
    nvml_config_path: Path, open_backend: OpenBackend
) -> None:
    backend = open_backend([FakeGpu(), SECOND_GPU])
    devices = backend.discover()
    nvml_config([FakeGpu(), replace(SECOND_GPU, xid=79)]).write(nvml_config_path)
    fine, fallen = backend.check_health(devices)
    assert fine.health is Health.HEALTHY
    assert (fallen.health, fallen.health_message) == (
        Health.UNHEALTHY,
        "NVML: XID 79 critical error reported by the driver",
    )
    assert backend.check_health(devices)[1].health is Health.UNHEALTHY, "the driver reports no recovery"


def test_application_xid_leaves_the_gpu_healthy(nvml_config_path: Path, open_backend: OpenBackend) -> None:
    backend = open_backend([FakeGpu()])
    devices = backend.discover()
    nvml_config([FakeGpu(xid=43)]).write(nvml_config_path)
    assert backend.check_health(devices)[0].health is Health.HEALTHY


def test_persistence_and_mig_modes_are_read_for_diagnosis(open_backend: OpenBackend) -> None:
    backend = open_backend([FakeGpu(), FakeGpu(uuid="GPU-00000000-0000-4000-8000-000000000002", minor=1,
                                               bus_id="00000000:2a:00.0", persistence=0, mig=1)])
    first, second = backend.discover()
    assert backend.modes(first) == (True, None)  # no MIG on this GPU: NVML says NOT_SUPPORTED
    assert backend.modes(second) == (False, True)


def test_diagnose_reads_the_gpus_through_nvml_and_reports_their_modes(
        fake_nvml_library: Path, nvml_config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from dra_driver.cli import main

    nvml_config([FakeGpu(persistence=0, mig=1)], driver_version="580.65.06").write(nvml_config_path)
    monkeypatch.setenv("XPUSHARE_DISCOVERY_BACKEND", "nvidia")
    monkeypatch.setenv("XPUSHARE_NVML_LIBRARY", str(fake_nvml_library))
    monkeypatch.delenv("CUDA_VERSION", raising=False)
    dirs = [arg for flag, name in (("--state-dir", "s"), ("--run-dir", "r"), ("--cdi-dir", "c"))
            for arg in (flag, str(tmp_path / name))]
    code = main(["diagnose", "-o", "json", *dirs, "--host-root", str(tmp_path / "host")])
    findings = json.loads(capsys.readouterr().out)["findings"]
    messages = {(f["severity"], f["subject"]): f["message"] for f in findings}
    assert code == 0
    assert messages[("info", "discovery")] == "nvidia: 1 device(s)"
    assert messages[("info", "NVIDIA driver")] == "version 580.65.06, runs CUDA up to 13.0"
    gpu = [f["message"] for f in findings if f["subject"].startswith("GPU ")]
    assert any("persistence mode is off" in m for m in gpu)
    assert any("MIG mode is on" in m for m in gpu)
