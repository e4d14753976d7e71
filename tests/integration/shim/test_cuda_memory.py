"""CUDA memory limits, enforced in real processes that preload the shim over the fake libcuda."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.shim.conftest import MIB, claim_usage
from tests.support.shimlib import ShimSetup, build_program

CUDA_ERROR_OUT_OF_MEMORY = 2


@pytest.mark.parametrize("mode", ["dlsym", "dlsym_old", "gpa", "link"])
def test_allocation_past_the_limit_fails_and_leaves_usage_unchanged(setup: ShimSetup, mode: str) -> None:
    setup.add_device(0, 10 * MIB)
    client = build_program("cuda_client", linked_cuda=mode == "link")
    result = setup.run([client, mode, "--", "alloc", 6 * MIB, "alloc", 6 * MIB, "info", "ready"], extra={})
    assert result.codes("alloc") == [0, CUDA_ERROR_OUT_OF_MEMORY], result.stdout + result.stderr
    assert result.value("info", "free") == 4 * MIB
    assert result.value("info", "total") == 10 * MIB
    # The failed request never reached the device and never stayed in the ledger.
    assert setup.cuda_state.peak() == 6 * MIB
    usage = claim_usage(setup.ledger_path())
    assert usage.peak_bytes == 6 * MIB
    assert (usage.refused_allocs, usage.refused_bytes) == (1, 6 * MIB)  # for the claim's operators


def test_frees_return_exactly_what_was_charged(setup: ShimSetup, cuda_client: Path) -> None:
    setup.add_device(0, 64 * MIB)
    commands: list[str | int] = ["alloc", 3 * MIB, "managed", 5 * MIB, "async", 7 * MIB, "pool", 11 * MIB,
                                 "pitch", 1000, 1000, "info",
                                 "free", "free", "freeasync", "free", "free", "info"]
    result = setup.run([cuda_client, "dlsym", "--", *commands])
    for kind in ("alloc", "managed", "async", "pool"):
        assert result.codes(kind) == [0]
    pitched = result.value("pitch", "pitch") * 1000
    used = 3 * MIB + 5 * MIB + 7 * MIB + 11 * MIB + pitched
    assert result.value("info", "free", 0) == 64 * MIB - used
    assert result.value("info", "free", 1) == 64 * MIB
    assert setup.cuda_state.allocated() == 0


def test_vmm_async_pool_and_managed_allocations_count_against_one_limit(setup: ShimSetup,
                                                                         cuda_client: Path) -> None:
    setup.add_device(0, 16 * MIB)
    commands: list[str | int] = ["vmm", 4 * MIB, "async", 4 * MIB, "pool", 4 * MIB, "managed", 4 * MIB,
                                 "vmm", 1, "release", "vmm", 1, "info", "ready"]
    result = setup.run([cuda_client, "gpa", "--", *commands])
    # Full at 16 MiB: one more byte fails; releasing a VMM handle makes room again.
    assert result.codes("vmm") == [0, CUDA_ERROR_OUT_OF_MEMORY, 0]
    assert result.codes("release") == [0]
    assert result.value("info", "free") == 4 * MIB - 1
    container = claim_usage(setup.ledger_path())
    assert container.key == setup.claim
    assert container.used_bytes == 0
    assert container.peak_bytes == 16 * MIB


def test_a_program_that_resolves_everything_through_cuGetProcAddress_is_limited(setup: ShimSetup,
                                                                              cuda_client: Path) -> None:
    setup.add_device(0, 8 * MIB)
    result = setup.run([cuda_client, "gpa", "--", "fill", MIB, "total", "info"])
    assert result.value("fill", "count") == 8
    assert result.value("fill", "rc") == CUDA_ERROR_OUT_OF_MEMORY
    assert result.value("total", "bytes") == 8 * MIB
    assert result.value("info", "total") == 8 * MIB


def test_a_second_process_of_the_claim_sees_the_first_ones_usage(setup: ShimSetup, cuda_client: Path) -> None:
    import subprocess

    setup.add_device(0, 10 * MIB)
    first = subprocess.Popen([str(cuda_client), "dlsym", "--", "alloc", str(6 * MIB), "ready"],
                             env=setup.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "alloc rc=0"
        assert first.stdout.readline().strip() == "ready"
        second = setup.run([cuda_client, "dlsym", "--", "info", "alloc", 5 * MIB, "alloc", 4 * MIB])
        assert second.value("info", "free") == 4 * MIB
        assert second.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY, 0]
    finally:
        first.communicate(timeout=10)
    assert claim_usage(setup.ledger_path()).used_bytes == 0


def test_devices_keep_their_own_limits(setup: ShimSetup, cuda_client: Path) -> None:
    setup.add_device(0, 4 * MIB)
    setup.add_device(1, 8 * MIB)
    extra = {"FAKE_CUDA_DEVICES": "2"}
    on_zero = setup.run([cuda_client, "gpa", "0", "--", "fill", MIB, "info"], extra=extra)
    on_one = setup.run([cuda_client, "gpa", "1", "--", "fill", MIB, "info", "vmm", 1], extra=extra)
    assert (on_zero.value("fill", "count"), on_zero.value("info", "total")) == (4, 4 * MIB)
    assert (on_one.value("fill", "count"), on_one.value("info", "total")) == (8, 8 * MIB)
    assert on_one.codes("vmm") == [CUDA_ERROR_OUT_OF_MEMORY]


UUID_A = "GPU-3f1c9a52-8d0e-4b7a-9c61-2e5d7f0a4b19"
UUID_B = "GPU-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_limits_follow_the_device_whatever_order_the_process_sees_it_in(setup: ShimSetup,
                                                                       cuda_client: Path) -> None:
    """The container was given A (4 MiB) then B (8 MiB); the process sees B first, as it would with
    CUDA_VISIBLE_DEVICES=1,0: each device keeps its own limit, found by its UUID, not by its ordinal."""
    setup.add_device(0, 4 * MIB, uuid=UUID_A)
    setup.add_device(1, 8 * MIB, uuid=UUID_B)
    extra = {"FAKE_CUDA_DEVICES": "2", "FAKE_CUDA_UUIDS": f"{UUID_B},{UUID_A}"}
    on_zero = setup.run([cuda_client, "gpa", "0", "--", "fill", MIB, "info"], extra=extra)
    on_one = setup.run([cuda_client, "gpa", "1", "--", "fill", MIB, "info"], extra=extra)
    assert (on_zero.value("fill", "count"), on_zero.value("info", "total")) == (8, 8 * MIB)  # B's
    assert (on_one.value("fill", "count"), on_one.value("info", "total")) == (4, 4 * MIB)  # A's


def test_a_device_no_claim_holds_gets_no_memory_and_one_line_names_it(setup: ShimSetup,
                                                                     cuda_client: Path) -> None:
    """Narrowed to one device that is not the claim's (B), ordinal 0 must neither take A's limit or
    ledger nor run unlimited: it is refused with CUDA's out-of-memory code, and says so once."""
    setup.add_device(0, 4 * MIB, uuid=UUID_A)
    extra = {"FAKE_CUDA_UUIDS": UUID_B}
    result = setup.run([cuda_client, "gpa", "0", "--", "alloc", MIB, "alloc", 16 * MIB, "info"], extra=extra)
    assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY] * 2, result.stderr
    assert result.value("info", "free") == 0  # what cuMemGetInfo offers on it: nothing
    assert setup.cuda_state.peak() == 0  # nothing reached the device
    assert claim_usage(setup.ledger_path()).used_bytes == 0  # nor charged to A's ledger
    assert result.stderr == (f"xpushare: device 0 ({UUID_B}) is held by no claim of this container: "
                             "its allocations are refused\n")

def test_python_through_ctypes_is_limited(setup: ShimSetup) -> None:
    setup.add_device(0, 3 * MIB)
    script = """
import ctypes
cuda = ctypes.CDLL("libcuda.so.1")
ctx, ptr = ctypes.c_void_p(), ctypes.c_ulonglong()
assert cuda.cuInit(0) == 0 and cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, 0) == 0
codes = [cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(1 << 20)) for _ in range(4)]
free, total = ctypes.c_size_t(), ctypes.c_size_t()
cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total))
print("codes", codes, "free", free.value, "total", total.value)
"""
    result = setup.run([sys.executable, "-c", script])
    assert result.stdout.strip() == f"codes [0, 0, 0, 2] free 0 total {3 * MIB}", result.stderr


def test_without_a_limits_file_every_allocation_is_refused_and_one_line_says_why(setup: ShimSetup,
                                                                                  cuda_client: Path) -> None:
    # No XPUSHARE_LIMITS_FILE: the test build reads the fixed path, absent on this host (fail closed).
    result = setup.run([cuda_client, "dlsym", "--", "alloc", 600 * MIB, "alloc", 300 * MIB, "info"])
    assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY, CUDA_ERROR_OUT_OF_MEMORY]
    assert setup.cuda_state.peak() == 0  # nothing reached the device
    assert result.stderr == ("xpushare: limits file /etc/xpushare/limits.d: No such file or directory; "
                             "device allocations refused\n")


def test_a_process_that_never_touches_the_device_is_unaffected(setup: ShimSetup) -> None:
    setup.add_device(0, MIB)
    prepared = setup.ledger_path().read_bytes()  # as the plugin created it
    result = setup.run([sys.executable, "-c", "import json; print(json.dumps({'ok': 1}))"])
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, '{"ok": 1}', "")
    assert setup.ledger_path().read_bytes() == prepared  # no ledger joined: not a byte written
    alone = ShimSetup(setup.root / "alone", plugin=False)
    alone.root.mkdir()
    alone.add_device(0, MIB)
    result = alone.run([sys.executable, "-c", "print(1)"])
    assert (result.returncode, result.stderr) == (0, "")
    assert not alone.ledger_path().exists()  # without a plugin: no ledger joined, no file created
    quiet = setup.run(["/bin/true"], limits=False)
    assert (quiet.returncode, quiet.stderr) == (0, "")


@pytest.mark.parametrize(
    "text",
    ["version 2\nclaim a\n", "version 1\n", "version 1\nclaim a\ndevice index=0 memory=12x\n",
     "version 1\nclaim a\ndevice index=0\ndevice index=0\n",
     "version 1\nclaim a\ndevice index=0 cores=101\n"],
)
def test_a_malformed_limits_file_is_reported_and_refuses_allocations(setup: ShimSetup, cuda_client: Path,
                                                                     text: str) -> None:
    setup.add_device(0, MIB)
    setup.limits_file.chmod(0o644)
    setup.limits_file.write_text(text)
    result = setup.run([cuda_client, "dlsym", "--", "alloc", 2 * MIB, "alloc", 4096])
    assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY, CUDA_ERROR_OUT_OF_MEMORY]
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"xpushare: limits file {setup.limits_file}: ")
    assert result.stderr.endswith("; device allocations refused\n")


def test_launches_from_every_process_land_on_the_shared_device_timeline(setup: ShimSetup,
                                                                        cuda_client: Path) -> None:
    setup.add_device(0, MIB)
    for mode in ("gpa", "dlsym"):
        result = setup.run([cuda_client, mode, "--", "launch", 500])
        assert result.lines("launch") == ["launch done=500"], result.stdout  # no failed launch printed
    assert setup.cuda_state.launches() == 1000
