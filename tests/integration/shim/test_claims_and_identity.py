"""Several claims in one container, and devices found by identity: real processes preloading the shim.

The node plugin mounts each claim's limits file in one directory; the shim reads them all. A process
finds each device it uses by its identity (the CUDA UUID; the Ascend physical chip id through
``rtGetDevicePhyIdByIndex``), whatever the visible-devices variables did to the numbering, and a device
that no claim of the container holds gets no memory. Two claims on the same device add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from shim.limits import DeviceLimits, write_limits_file
from tests.integration.shim.conftest import MIB, claim_usage
from tests.support.shimlib import DeviceDir, Result, ShimSetup

CUDA_ERROR_OUT_OF_MEMORY = 2
ACL_ERROR_RT_MEMORY_ALLOCATION = 207001
GPU_A = "GPU-3f1c9a52-8d0e-4b7a-9c61-2e5d7f0a4b19"
GPU_B = "GPU-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
GPU_C = "GPU-77777777-8d0e-4b7a-9c61-2e5d7f0a4b19"


@dataclass
class Container:
    """A container's claims as the plugin prepares them: one limits file per claim in one directory."""

    setup: ShimSetup
    files: dict[str, list[DeviceLimits]] = field(default_factory=dict)

    @property
    def limits_dir(self) -> Path:
        return self.setup.root / "limits.d"

    def device(self, uuid: str) -> DeviceDir:
        return self.setup.device_dir(uuid)

    def claim(self, claim: str, uuid: str, memory: int, *, physical: int | None = None,
              cores: int = 100) -> DeviceLimits:
        device_dir = self.device(uuid)
        device_dir.prepare(claim, memory, cores)
        devices = self.files.setdefault(claim, [])
        line = device_dir.limits(claim, len(devices), memory, cores)
        if physical is not None:
            line = replace(line, physical=physical)
        devices.append(line)
        self.limits_dir.mkdir(exist_ok=True)
        write_limits_file(self.limits_dir / claim, claim, devices)
        return line

    def run(self, argv: list[str | int | Path], **env: str) -> Result:
        return self.setup.run(argv, extra={"XPUSHARE_LIMITS_FILE": str(self.limits_dir), **env})


def test_two_claims_keep_their_own_limits_whatever_order_the_process_sees_the_devices(
        setup: ShimSetup, cuda_client: Path) -> None:
    box = Container(setup)
    box.claim("claim-a", GPU_A, 4 * MIB)
    box.claim("claim-b", GPU_B, 8 * MIB)
    seen = {"FAKE_CUDA_DEVICES": "2", "FAKE_CUDA_UUIDS": f"{GPU_B},{GPU_A}"}  # CUDA_VISIBLE_DEVICES=1,0
    on_zero = box.run([cuda_client, "gpa", "0", "--", "fill", MIB, "info"], **seen)
    on_one = box.run([cuda_client, "gpa", "1", "--", "fill", MIB, "info"], **seen)
    assert (on_zero.value("fill", "count"), on_zero.value("info", "total")) == (8, 8 * MIB), on_zero
    assert (on_one.value("fill", "count"), on_one.value("info", "total")) == (4, 4 * MIB), on_one
    narrowed = box.run([cuda_client, "gpa", "0", "--", "fill", MIB], FAKE_CUDA_UUIDS=GPU_A)  # only A
    assert narrowed.value("fill", "count") == 4, narrowed


def test_each_claim_is_charged_in_its_own_ledger(setup: ShimSetup, cuda_client: Path) -> None:
    box = Container(setup)
    box.claim("claim-a", GPU_A, 4 * MIB)
    box.claim("claim-b", GPU_B, 8 * MIB)
    seen = {"FAKE_CUDA_DEVICES": "2", "FAKE_CUDA_UUIDS": f"{GPU_A},{GPU_B}"}
    result = box.run([cuda_client, "gpa", "1", "--", "alloc", 3 * MIB], **seen)
    assert result.codes("alloc") == [0], result
    # The process has exited: its bytes came back, but the ledger's peak keeps what it held, and where.
    assert claim_usage(box.device(GPU_B).ledger("claim-b")).peak_bytes == 3 * MIB
    assert claim_usage(box.device(GPU_A).ledger("claim-a")).peak_bytes == 0


def test_a_device_no_claim_holds_is_refused_and_named_once(setup: ShimSetup, cuda_client: Path) -> None:
    box = Container(setup)
    box.claim("claim-a", GPU_A, 4 * MIB)
    box.claim("claim-b", GPU_B, 8 * MIB)
    seen = {"FAKE_CUDA_DEVICES": "3", "FAKE_CUDA_UUIDS": f"{GPU_A},{GPU_B},{GPU_C}"}
    result = box.run([cuda_client, "gpa", "2", "--", "alloc", MIB, "alloc", MIB], **seen)
    assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY] * 2, result
    assert setup.cuda_state.peak(2) == 0
    assert result.stderr == (f"xpushare: device 2 ({GPU_C}) is held by no claim of this container: "
                             "its allocations are refused\n")


def test_two_claims_on_one_device_add_up_and_follow_both_board_entries(setup: ShimSetup,
                                                                      cuda_client: Path) -> None:
    box = Container(setup)
    box.claim("claim-a", GPU_A, 4 * MIB)
    box.claim("claim-b", GPU_A, 8 * MIB)
    seen = {"FAKE_CUDA_UUIDS": GPU_A}
    result = box.run([cuda_client, "gpa", "0", "--", "fill", MIB, "info"], **seen)
    assert (result.value("fill", "count"), result.value("info", "total")) == (12, 12 * MIB), result
    assert claim_usage(box.device(GPU_A).ledger("claim-a")).peak_bytes == 12 * MIB  # the first claim's
    box.device(GPU_A).set_quota("claim-b", 2 * MIB, 100)  # a live quota change of the second claim
    lowered = box.run([cuda_client, "gpa", "0", "--", "fill", MIB, "info"], **seen)
    assert (lowered.value("fill", "count"), lowered.value("info", "total")) == (6, 6 * MIB), lowered


def test_a_bad_claim_file_refuses_everything_and_names_the_file(setup: ShimSetup, cuda_client: Path) -> None:
    box = Container(setup)
    box.claim("claim-a", GPU_A, 4 * MIB)
    (box.limits_dir / "claim-b").write_text("version 1\nclaim claim-b\ndevice index=0 memory=lots\n")
    (box.limits_dir / ".claim-c.abcdefgh.tmp").write_text("garbage")  # a writer's temp file: not a claim
    result = box.run([cuda_client, "gpa", "0", "--", "alloc", MIB], FAKE_CUDA_UUIDS=GPU_A)
    assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY], result
    assert result.stderr == (f"xpushare: limits file {box.limits_dir}/claim-b: Invalid argument (line 3); "
                             "device allocations refused\n")


def test_ascend_chips_are_found_by_physical_id_however_the_process_numbers_them(setup: ShimSetup,
                                                                                 acl_client: Path) -> None:
    """A TP=2 pod on physical chips 5 and 7, one claim each: the runtime numbers them 0 and 1, and
    ASCEND_RT_VISIBLE_DEVICES=1 makes chip 7 the process's device 0."""
    box = Container(setup)
    box.claim("claim-a", "NPU-5", 4 * MIB, physical=5)
    box.claim("claim-b", "NPU-7", 8 * MIB, physical=7)
    chips = {"FAKE_ASCEND_DEVICES": "2", "FAKE_ASCEND_PHYSICAL": "5,7"}
    first = box.run([acl_client, "0", "fill", MIB], **chips)
    second = box.run([acl_client, "1", "fill", MIB], **chips)
    narrowed = box.run([acl_client, "0", "fill", MIB], ASCEND_RT_VISIBLE_DEVICES="1", **chips)
    counts = [r.value("fill", "count") for r in (first, second, narrowed)]
    assert counts == [4, 8, 8], (first, second, narrowed)
    # The fake device keeps what exited processes left: the narrowed process's 8 MiB went to chip 7 too.
    assert (setup.ascend_state.allocated(0), setup.ascend_state.allocated(1)) == (4 * MIB, 16 * MIB)


def test_ascend_chips_without_the_runtime_s_answer_are_numbered_by_physical_id(setup: ShimSetup,
                                                                                acl_client: Path) -> None:
    """An old runtime that cannot say a chip's physical id: logical ids follow the physical ids'
    order, as the driver numbers the chips a container was given (claims listed the other way round)."""
    box = Container(setup)
    box.claim("claim-a", "NPU-7", 8 * MIB, physical=7)
    box.claim("claim-b", "NPU-5", 4 * MIB, physical=5)
    counts = [box.run([acl_client, str(i), "fill", MIB], FAKE_ASCEND_DEVICES="3").value("fill", "count")
              for i in range(2)]
    assert counts == [4, 8]
    third = box.run([acl_client, "2", "alloc", MIB], FAKE_ASCEND_DEVICES="3")
    assert third.codes("alloc") == [ACL_ERROR_RT_MEMORY_ALLOCATION], third
    assert "device 2 (number 2) is held by no claim of this container" in third.stderr
