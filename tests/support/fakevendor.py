"""Build and configure the fake vendor libraries under tests/fakes (NVML, DCMI) and the fake npu-smi.

The fakes answer as the vendor's own library or tool does, so code under test loads them through its
real loader. Each fake reads a small "key=value" file named by an environment variable
(``FAKE_NVML_CONFIG``, ``FAKE_DCMI_CONFIG``) and reads it again when it changes, so a test can make a
device fall sick after initialisation by rewriting the file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dra_driver.simulation.cbuild import compile_c

# Fakes only the tests use (the simulated runtimes the demo runs ship in dra_driver/simulation/csrc).
FAKES_DIR = Path(__file__).resolve().parents[1] / "fakes"
NPU_SMI_DIR = FAKES_DIR / "npu-smi"
NPU_SMI_FIXTURES = NPU_SMI_DIR / "fixtures"


def build_fake_nvml() -> Path:
    """The fake ``libnvidia-ml.so.1`` (soname included), built once per source change."""
    source = FAKES_DIR / "nvml" / "fake_nvml.c"
    return compile_c(
        [source], "libnvidia-ml.so.1", shared=True, flags=[f"-I{source.parent}"], libs=["-lpthread"]
    )


def build_fake_dcmi() -> Path:
    """The fake ``libdcmi.so``."""
    return compile_c([FAKES_DIR / "dcmi" / "fake_dcmi.c"], "libdcmi.so", shared=True, libs=["-lpthread"])


@dataclass
class FakeGpu:
    """One fake GPU; defaults describe an H100 SXM5 as NVML reports it."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-3f1c9a52-8d0e-4b7a-9c61-2e5d7f0a4b19"
    memory_mib: int = 81559
    used_mib: int = 0
    bus_id: str = "00000000:18:00.0"
    pci_device_id: str = "0x233010DE"
    minor: int = 0
    numa: int = 0
    sm_count: int = 132
    lost: int = 0
    xid: int = 0
    persistence: int = 1
    mig: int = -1  # -1: the GPU has no MIG (NVML answers NOT_SUPPORTED)


@dataclass
class FakeNpu:
    """One fake Ascend chip; defaults describe a 910B3 as DCMI reports it."""

    card_id: int = 0
    device_id: int = 0
    logic_id: int = 0
    phy_id: int = 0
    chip_type: str = "Ascend"
    chip_name: str = "910B3"
    chip_ver: str = "V1"
    aicore_cnt: int = 20
    hbm_mib: int = 65536
    hbm_used_mib: int = 3162
    memory_mib: int = 15665
    health: int = 0
    share: int = 1
    share_error: int = 0
    domain: int = 0
    bus: str = "0xc1"
    dev: int = 0
    func: int = 0
    vdie: str = "6c2a9f4e 31b70d58 a1e37f0c 4b9d2e61 00000001"
    lost: int = 0
    lost_error: int = -8006


@dataclass
class FakeConfig:
    """Global keys plus devices, written in the fakes' "key=value" format."""

    settings: dict[str, object] = field(default_factory=dict)
    devices: Sequence[FakeGpu | FakeNpu] = ()

    def render(self) -> str:
        lines = [f"{key}={value}" for key, value in self.settings.items()]
        for device in self.devices:
            lines.append("[device]")
            lines += [f"{key}={value}" for key, value in asdict(device).items()]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> Path:
        """Write atomically so a fake never reads half a file."""
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(self.render())
        os.replace(temporary, path)
        return path


def nvml_config(devices: Sequence[FakeGpu] = (FakeGpu(),), **settings: object) -> FakeConfig:
    base: dict[str, object] = {"driver_version": "550.54.15", "cuda_version": 12040}
    return FakeConfig({**base, **settings}, devices)


def dcmi_config(devices: Sequence[FakeNpu] = (FakeNpu(),), **settings: object) -> FakeConfig:
    base: dict[str, object] = {"dcmi_version": "24.1.rc2", "driver_version": "24.1.rc2"}
    return FakeConfig({**base, **settings}, devices)


def fake_npu_smi(
    directory: Path,
    info_fixture: str,
    share: dict[tuple[int, int], bool] | None = None,
    health: Mapping[int, str] | None = None,
) -> Path:
    """Set up ``directory`` for the fake npu-smi: ``info.txt`` from a fixture (with the Health of the NPUs
    that ``health`` names rewritten, ``{1: "Alarm"}``) and device-share answers.

    Returns the path of the fake tool; the caller sets ``FAKE_NPU_SMI_DIR`` to ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    table = (NPU_SMI_FIXTURES / info_fixture).read_text()
    (directory / "info.txt").write_text(with_health(table, health or {}))
    for (npu, chip), enabled in (share or {}).items():
        answer = "device-share-enabled.txt" if enabled else "device-share-disabled.txt"
        shutil.copyfile(NPU_SMI_FIXTURES / answer, directory / f"device-share-{npu}-{chip}.txt")
    return NPU_SMI_DIR / "npu-smi"


def with_health(table: str, health: Mapping[int, str]) -> str:
    """``npu-smi info`` text with the Health column of the NPU rows in ``health`` replaced, widths kept."""
    lines, devices = [], True  # the process table that follows the device table is left alone
    for line in table.splitlines(keepends=True):
        cells = line.split("|")
        first = cells[1].split() if len(cells) > 3 else []
        devices = devices and "Process id" not in line
        npu_row = devices and len(first) == 2 and first[0].isdigit() and not first[1].isdigit()
        if npu_row and int(first[0]) in health:
            cells[2] = f" {health[int(first[0])]}".ljust(len(cells[2]))
        lines.append("|".join(cells))
    return "".join(lines)


def npu_smi_on_path(bin_dir: Path) -> Path:
    """``bin_dir`` holding the fake as ``npu-smi``, to put first on ``PATH`` where discovery looks for it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "npu-smi"
    link.unlink(missing_ok=True)
    link.symlink_to(NPU_SMI_DIR / "npu-smi")
    return bin_dir
