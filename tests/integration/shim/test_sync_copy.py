"""Synchronous copies and synchronizes end a process's batch: right after one, the ledger no longer counts
it as busy.

Without that, a process whose step ends in a synchronous copy (the runtime's ``cudaMemcpy``,
``aclrtMemcpy``) or a device-wide synchronize (``aclrtSynchronizeDevice``) would count as having work on
the device until its next launch, and hold back other claims' borrowing of idle time. On Ascend the hooks
sit at the rt level; the ACL calls reach them through libascendcl's own calls into libruntime.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.shim.conftest import MIB, claim_usage
from tests.support.shimlib import ShimSetup

KERNELS = 3  # of 1 ms each

COPIES = ["memcpy", "dtoh", "htod", "dtod", "memcpy_ptds", "dtoh_ptds", "htod_ptds", "dtod_ptds"]

# The rt-level completion points, called directly and through the ACL function built on each.
ASCEND_CALLS = ["rtDeviceSynchronize", "rtDeviceSynchronizeWithTimeout", "rtCtxSynchronize",
                "rtStreamSynchronizeWithTimeout", "rtMemcpy", "aclrtSynchronizeDevice",
                "aclrtSynchronizeDeviceWithTimeout", "aclrtSynchronizeStream",
                "aclrtSynchronizeStreamWithTimeout", "aclrtMemcpy"]


def _hold(setup: ShimSetup, client: Path, mode: str,
          *commands: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Run the client up to its final ``ready`` and keep it alive (its ledger record with it)."""
    prefix = [mode] if mode.isdigit() else [mode, "--"]  # acl_client takes a device, cuda_client a mode
    argv = [str(client), *prefix, "alloc", str(MIB), "work", str(KERNELS), *commands, "ready"]
    proc = subprocess.Popen(argv, env=setup.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != "ready":
        line = proc.stdout.readline()
        assert line, f"client ended early: {lines}"
        lines.append(line.strip())
    return proc, lines


def _release(proc: subprocess.Popen[str]) -> None:
    proc.communicate(timeout=10)


@pytest.mark.parametrize("mode", ["gpa", "dlsym"])
@pytest.mark.parametrize("kind", COPIES)
def test_after_a_synchronous_copy_the_process_has_no_pending_work(setup: ShimSetup, cuda_client: Path,
                                                                   mode: str, kind: str) -> None:
    setup.add_device(0, 16 * MIB)
    proc, lines = _hold(setup, cuda_client, mode, "copy", kind)
    try:
        assert lines[1:] == [f"work done={KERNELS}", "copy rc=0", "ready"]
        container = claim_usage(setup.ledger_path())
        assert container.npending == 0
        assert container.used_ns >= (KERNELS - 0.5) * 1_000_000  # its work was charged at the copy
    finally:
        _release(proc)


@pytest.mark.parametrize("call", ASCEND_CALLS)
def test_after_an_ascend_synchronize_or_copy_the_process_has_no_pending_work(setup: ShimSetup,
                                                                             acl_client: Path,
                                                                             call: str) -> None:
    setup.add_device(0, 16 * MIB, uuid="NPU-0")
    proc, lines = _hold(setup, acl_client, "0", "sync", call)
    try:
        assert lines == ["alloc rc=0", f"work done={KERNELS}", "sync rc=0", "ready"]
        container = claim_usage(setup.ledger_path())
        assert container.npending == 0
        assert container.used_ns >= (KERNELS - 0.5) * 1_000_000  # its work was charged at the call
    finally:
        _release(proc)


@pytest.mark.parametrize(("client", "mode"), [("cuda", "gpa"), ("acl", "0")])
def test_without_a_synchronize_or_copy_finished_work_stays_pending(setup: ShimSetup, cuda_client: Path,
                                                                    acl_client: Path, client: str,
                                                                    mode: str) -> None:
    setup.add_device(0, 16 * MIB, uuid="NPU-0" if client == "acl" else None)
    proc, _ = _hold(setup, cuda_client if client == "cuda" else acl_client, mode)
    try:
        time.sleep((KERNELS + 5) / 1000)  # the device is done; the shim has not been told
        container = claim_usage(setup.ledger_path())
        assert container.npending == 1
    finally:
        _release(proc)
