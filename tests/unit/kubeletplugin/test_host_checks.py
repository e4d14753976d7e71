"""``xpushare diagnose``'s checks of the accelerator stack, on fake host roots: healthy and broken hosts of
each vendor, and the compatibility tables they rest on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dra_driver.core.devices import Device, DeviceType, Health
from kubeletplugin.compat import cuda_for_driver, driver_for_cuda, torch_npu_cann, vllm_ascend_requirements
from kubeletplugin.findings import Finding, Severity
from kubeletplugin.host_checks import Host, check_host
from tests.support.plugin_claims import npu


def _write(root: Path, path: str, text: str = "") -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _ascend_root(root: Path, *, hal: bool = True, firmware: bool = True, cann: str = "8.1.RC1") -> Path:
    _write(root, "usr/local/Ascend/driver/version.info", "Version=25.0.rc1\n")
    if firmware:
        _write(root, "usr/local/Ascend/firmware/version.info", "Version=7.7.0.1.231\n")
    if hal:
        _write(root, "usr/local/Ascend/driver/lib64/driver/libascend_hal.so", "hal")
    _write(root, "usr/local/Ascend/ascend-toolkit/latest/version.cfg", f"version={cann}\n")
    for chip in (5, 7):
        _write(root, f"dev/davinci{chip}")
    return root


def _by(findings: list[Finding], severity: Severity) -> dict[str, str]:
    return {f.subject: f.message for f in findings if f.severity is severity}


def _no_packages(name: str) -> str | None:
    return None


def test_a_healthy_ascend_host_reports_its_versions_and_nothing_else(tmp_path: Path) -> None:
    host = Host(root=_ascend_root(tmp_path), environ={"HOME": "/root"}, devices=[npu(5), npu(7)],
                packages=_no_packages)
    findings = check_host(host)
    assert _by(findings, Severity.ERROR) == {}
    assert _by(findings, Severity.WARNING) == {}
    facts = _by(findings, Severity.INFO)
    assert facts["Ascend driver"] == "version 25.0.rc1"
    assert facts["CANN toolkit"] == "version 8.1.RC1"
    assert "plog: /root/ascend/log (absent)" in facts["Ascend logs"]


def test_a_broken_ascend_host_gets_each_problem_with_its_fix(tmp_path: Path) -> None:
    versions = {"torch_npu": "2.5.1", "vllm-ascend": "0.9.1"}
    unshared = replace(npu(7), shareable=False, extra={"sharing": "device-share disabled"})
    host = Host(root=_ascend_root(tmp_path, hal=False, firmware=False, cann="8.0.0"),
                environ={"ASCEND_RT_VISIBLE_DEVICES": "5"}, devices=[npu(5), unshared],
                packages=versions.get)
    findings = check_host(host)
    errors, warnings = _by(findings, Severity.ERROR), _by(findings, Severity.WARNING)
    assert errors["Ascend driver"] == "libascend_hal.so is missing"
    visible = errors["ASCEND_RT_VISIBLE_DEVICES"]
    assert "names [5], but this container has 2 chip(s) (physical [5, 7])" in visible
    assert "207004" in visible
    assert "no version.info" in warnings["Ascend firmware"]
    assert warnings["NPU npu-7"].startswith("device-share disabled: only whole-device claims")
    assert warnings["torch_npu"] == "2.5.1 is made for CANN 8.1.RC1, the host has 8.0.0"
    assert warnings["vllm-ascend"] == "0.9.1 needs torch_npu 2.5.1.post1 and CANN 8.2.RC1; torch_npu is 2.5.1"
    fix = next(f.hint for f in findings if f.subject == "NPU npu-7")
    assert fix.startswith("npu-smi set -t device-share")


def _nvidia_root(root: Path, driver: str, log: str = "") -> Path:
    _write(root, "proc/driver/nvidia/version",
           f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver}  Release Build  (dvs-builder@U16)\n")
    if log:
        _write(root, "var/log/kern.log", log)
    return root


def _gpu(index: int = 0, health: Health = Health.HEALTHY) -> Device:
    return Device(type=DeviceType.GPU, vendor="nvidia", model="H100", uuid=f"GPU-{index}", index=index,
                  memory_bytes=80 << 30, cores=132, device_node=f"/dev/nvidia{index}", minor=index,
                  health=health, health_message="NVML: GPU is lost" if health is Health.UNHEALTHY else "")


def test_a_healthy_nvidia_host_says_which_cuda_its_driver_runs(tmp_path: Path) -> None:
    host = Host(root=_nvidia_root(tmp_path, "580.65.06"), environ={"CUDA_VERSION": "12.8.1"},
                devices=[_gpu()], gpu_modes=lambda d: (True, False), packages=_no_packages)
    findings = check_host(host)
    assert _by(findings, Severity.ERROR) == {}
    assert _by(findings, Severity.WARNING) == {}
    assert _by(findings, Severity.INFO)["NVIDIA driver"] == "version 580.65.06, runs CUDA up to 13.0"


def test_a_broken_nvidia_host_names_cuda_persistence_mig_and_xids(tmp_path: Path) -> None:
    log = ("Dec  4 10:00:01 node kernel: NVRM: Xid (PCI:0000:18:00): 79, pid=0, GPU has fallen off the bus.\n"
           "Dec  4 10:00:02 node kernel: NVRM: Xid (PCI:0000:2a:00): 13, pid=4242, Graphics Exception\n"
           "Dec  4 10:00:03 node kernel: NVRM: Xid (PCI:0000:2a:00): 13, pid=4242, Graphics Exception\n")
    host = Host(root=_nvidia_root(tmp_path, "550.54.15", log), environ={"CUDA_VERSION": "12.8.1"},
                devices=[_gpu(), _gpu(1, Health.UNHEALTHY)],
                gpu_modes=lambda d: (False, True), packages=_no_packages)
    findings = check_host(host)
    errors, warnings = _by(findings, Severity.ERROR), _by(findings, Severity.WARNING)
    assert errors["CUDA"] == "the image's CUDA 12.8.1 needs driver 570.26 or newer; the node has 550.54.15"
    assert errors["GPU gpu-1"] == "NVML: GPU is lost"
    assert errors["GPU at 0000:18:00"].startswith("XID 79 x1 in the kernel log")
    assert warnings["GPU at 0000:2a:00"].startswith("XID 13 x2")  # an application's fault
    gpu0 = [f.message for f in findings if f.subject == "GPU gpu-0"]
    assert any("persistence mode is off" in m for m in gpu0)
    assert any("MIG mode is on" in m for m in gpu0)


def test_a_host_without_drivers_says_so(tmp_path: Path) -> None:
    (finding,) = check_host(Host(root=tmp_path, packages=_no_packages))
    assert (finding.severity, finding.message) == (Severity.WARNING, "no Ascend or NVIDIA driver found")


def test_the_compatibility_tables() -> None:
    assert cuda_for_driver("580.65.06") == "13.0"
    assert cuda_for_driver("550.54.15") == "12.4"
    assert cuda_for_driver("470.239.06") is None
    assert driver_for_cuda("12.4.1") == "550.54.14"
    assert driver_for_cuda("12.7") is None  # no such release in NVIDIA's table
    assert torch_npu_cann("2.5.1") == ("8.1.RC1",)
    assert torch_npu_cann("2.4.0") == ("8.0.RC3",)
    assert torch_npu_cann("2.4.0.post2") == ("8.0.0",)
    assert torch_npu_cann("2.7.1+git123") == ("8.3.RC1",)
    needs = vllm_ascend_requirements("v0.9.1rc2")
    assert needs is not None
    assert (needs.cann, needs.torch_npu) == ("8.2.RC1", "2.5.1.post1")
    assert vllm_ascend_requirements("0.1.0") is None
