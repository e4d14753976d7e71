"""The board and the peers, seen from running processes: a device's board is the plugin's word on each
claim's limits, and a claim knows its peers only from their ledgers' heads, read with bounds.

A board entry changed while a process runs reaches that process's limits; a board that cannot be used
leaves the limits file's values in force. A peer counts as busy only while its ledger is readable, is of
that claim, says it has work on the device and one of its processes is alive; the peers' ledgers are
followed when they appear after their board entry or are replaced in place (as the plugin replaces a
damaged one), so a guaranteed claim borrows exactly the idle time the others leave.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.simulation.workloads import (
    START_DELAY_NS,
    build_tenant,
    run_together,
    tenant_argv,
    window_busy_ns,
)
from shim.ledger import ClaimLedger, read_claim_usage
from tests.integration.shim.conftest import MIB
from tests.support.shimlib import Result, ShimSetup, TenantGroup, TenantSpec

CUDA_ERROR_OUT_OF_MEMORY = 2
WINDOW_MS = 500
A, B = TenantSpec("a", cores=30), TenantSpec("b", cores=70)  # both guaranteed: they borrow idle time


def _steady(shares: list[float]) -> float:
    return statistics.median(shares[1:])


def _holder(setup: ShimSetup, client: Path, *commands: str | int) -> subprocess.Popen[str]:
    """A process of the claim that runs ``commands``, stopping at ``ready`` until its stdin closes."""
    proc = subprocess.Popen([str(client), "dlsym", "--", *map(str, commands)], env=setup.env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    while (line := proc.stdout.readline().strip()) != "ready":
        assert line, "the holder ended before it was ready"
    return proc


def test_a_board_entry_changed_while_a_process_runs_reaches_its_limits(setup: ShimSetup,
                                                                       cuda_client: Path) -> None:
    setup.add_device(0, 16 * MIB, cores=50)
    device = setup.device_dir("GPU-0000")
    allocating = _holder(setup, cuda_client, "alloc", 4 * MIB, "ready",
                         "alloc", 4 * MIB, "info", "alloc", MIB)
    launching = _holder(setup, cuda_client, "launch", 10, "ready", "launch", 10)
    device.set_quota(setup.claim, 6 * MIB, 20, Priority.HIGH, ComputePolicy.FIXED)  # lowered
    out, _ = launching.communicate(timeout=30)  # its next launch check copies the entry
    assert "launch done=10" in out
    usage = read_claim_usage(setup.ledger_path())
    assert (usage.limit_bytes, usage.core_percent, usage.priority, usage.policy) == (
        6 * MIB, 20, Priority.HIGH, ComputePolicy.FIXED)
    out, _ = allocating.communicate(timeout=30)
    result = Result(allocating.returncode, out, "")
    assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY, 0]  # it holds 4: 4 + 4 > 6 MiB, 4 + 1 fits
    assert (result.value("info", "total"), result.value("info", "free")) == (6 * MIB, 2 * MIB)
    device.set_quota(setup.claim, 12 * MIB, 50)  # raised again, within what the claim was allocated
    raised = setup.run([cuda_client, "dlsym", "--", "fill", MIB])
    assert raised.value("fill", "count") == 12


def test_a_board_cannot_raise_a_limit_past_the_limits_files_allocation(setup: ShimSetup,
                                                                       cuda_client: Path) -> None:
    setup.add_device(0, 8 * MIB)
    setup.device_dir("GPU-0000").set_quota(setup.claim, 64 * MIB, 100)
    result = setup.run([cuda_client, "dlsym", "--", "fill", MIB, "info"])
    assert result.value("fill", "count") == 8
    assert result.value("info", "total") == 8 * MIB


@pytest.mark.parametrize("damage", ["magic", "short", "missing"])
def test_an_unusable_board_leaves_the_limits_files_values_in_force(setup: ShimSetup, cuda_client: Path,
                                                                   damage: str) -> None:
    setup.add_device(0, 8 * MIB)
    board = setup.device_dir("GPU-0000").board
    if damage == "missing":
        board.unlink()
    else:
        data = board.read_bytes()
        board.write_bytes(bytes(8) + data[8:] if damage == "magic" else data[:100])
    result = setup.run([cuda_client, "dlsym", "--", "fill", MIB, "info"])
    assert result.value("fill", "count") == 8
    assert result.value("info", "total") == 8 * MIB
    if damage != "missing":
        assert result.stderr.count(f"board {board} unusable") == 1, result.stderr


def _damage(group: TenantGroup, path: Path, how: str) -> ClaimLedger | None:
    """Damage claim b's ledger at ``path`` (its live, busy process keeps its own mapping); returns a
    ledger to close at the end when the damage made one."""
    data = path.read_bytes()
    if how == "magic":
        path.write_bytes(bytes(8) + data[8:])  # everything else still says "busy"
    elif how == "garbage":
        path.write_bytes(b"\xa5" * len(data))
    elif how == "truncated":
        os.truncate(path, 200)  # cut inside the head, just past its pending count
    elif how == "symlink":  # a link to the busy ledger, which a reader must not follow
        os.rename(path, path.with_name(".b"))
        path.symlink_to(".b")
    elif how in ("missing", "directory", "fifo"):
        path.unlink()
        if how == "directory":
            path.mkdir()
        elif how == "fifo":
            os.mkfifo(path)
    elif how == "another-claim":  # a busy, live ledger of a claim that is not on the board
        other = path.with_name(".c")
        ClaimLedger.create(other, "c", group.uuid, 64 * MIB, 50)
        ledger = ClaimLedger.open(other, "c", group.uuid)
        ledger.set_pending(ledger.attach_process(), True)
        os.replace(other, path)
        return ledger
    return None


@pytest.mark.parametrize("damage", [None, "magic", "garbage", "truncated", "another-claim", "missing",
                                    "directory", "fifo", "symlink"])
def test_a_peer_ledger_that_cannot_be_read_as_its_claims_counts_as_an_idle_peer(tmp_path: Path,
                                                                                 damage: str | None) -> None:
    group = TenantGroup(tmp_path)
    group.write_limits(A)
    group.write_limits(B)
    with ClaimLedger.open(group.ledger_path("b"), "b", group.uuid) as b:
        b.set_pending(b.attach_process(), True)  # a live process of b with work on the device
        other = _damage(group, group.ledger_path("b"), damage) if damage else None
        try:
            (result,) = group.run([A], 1.5, window_ms=WINDOW_MS)
        finally:
            if other is not None:
                other.close()
    if damage is None:
        assert _steady(result.shares()) <= 33, result.shares()  # b is busy: a keeps to its 30 %
    else:
        assert _steady(result.shares()) >= 90, result.shares()  # nothing usable: a borrows the idle device


def test_a_peer_whose_processes_were_all_killed_counts_as_an_idle_peer(tmp_path: Path) -> None:
    group = TenantGroup(tmp_path)
    group.write_limits(A)
    group.write_limits(B)
    victim = subprocess.Popen(tenant_argv("cuda", time.monotonic_ns(), 60), env=group.env("b"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while read_claim_usage(group.ledger_path("b")).used_ns < 100_000_000 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
    assert read_claim_usage(group.ledger_path("b")).npending > 0  # it died with work on the device
    (result,) = group.run([A], 1.5, window_ms=WINDOW_MS)
    assert _steady(result.shares()) >= 90, result.shares()


def _staggered(group: TenantGroup, change: Callable[[], None]) -> tuple[list[float], list[float]]:
    """a runs 3 s; ``change`` happens 0.5 s in; b starts 1 s in. The shares of both while both run."""
    build_tenant()
    group.env("a")  # builds the shim and the fakes before the clock starts
    epoch = time.monotonic_ns() + START_DELAY_NS
    commands = [(tenant_argv("cuda", epoch, 3.0, window_ms=WINDOW_MS), group.env("a")),
                (tenant_argv("cuda", epoch + 1_000_000_000, 2.0, window_ms=WINDOW_MS), group.env("b"))]

    def during() -> None:
        time.sleep(max(0.0, (epoch - time.monotonic_ns()) / 1e9 + 0.5))
        change()

    outputs = run_together(commands, timeout_s=60, during=during)
    for code, out, err in outputs:
        assert code == 0, out + err
    window_ns = WINDOW_MS * 1_000_000
    first, second = (window_busy_ns(out) for _, out, _ in outputs)
    # b's window k is a's window k + 2; b's first window is its start-up.
    return ([100 * ns / window_ns for ns in first[3:]], [100 * ns / window_ns for ns in second[1:]])


def _expect_30_70(shares: tuple[list[float], list[float]]) -> None:
    a, b = shares
    assert statistics.median(a) == pytest.approx(30, abs=3), shares
    assert statistics.median(b) == pytest.approx(70, abs=3), shares


def test_a_peer_ledger_created_after_its_board_entry_is_followed(tmp_path: Path) -> None:
    """The plugin puts a claim on the board, then creates its ledger: a running peer that looked in
    between must still find the ledger."""
    group = TenantGroup(tmp_path)
    group.write_limits(A)
    group.write_limits(B)
    path = group.ledger_path("b")
    path.unlink()

    def create() -> None:  # as the plugin does, a moment after the board entry
        ClaimLedger.create(path, "b", group.uuid, B.memory, B.cores)

    _expect_30_70(_staggered(group, create))


def test_a_peer_ledger_replaced_in_place_is_followed(tmp_path: Path) -> None:
    """The plugin replaces a claim's unusable ledger with a new file (a new inode; the board does not
    change): a running peer must read the new one, not the file it opened before."""
    group = TenantGroup(tmp_path)
    group.write_limits(A)
    group.write_limits(B)
    path = group.ledger_path("b")

    def replace() -> None:
        path.unlink()
        ClaimLedger.create(path, "b", group.uuid, B.memory, B.cores)

    _expect_30_70(_staggered(group, replace))


BUSY_PROCESS = """
import sys, time
from pathlib import Path
from shim.ledger import ClaimLedger
ledger = ClaimLedger.open(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
ledger.set_pending(ledger.attach_process(), True)
print("busy", flush=True)
time.sleep(60)
"""
REPO = Path(__file__).resolve().parents[3]


def test_a_peer_killed_with_work_queued_and_started_again_counts_as_busy_again(tmp_path: Path) -> None:
    group = TenantGroup(tmp_path)
    group.write_limits(A)
    group.write_limits(B)

    def kill_b() -> None:  # a process of b with work on the device, killed: b looks dead to a
        victim = subprocess.Popen([sys.executable, "-c", BUSY_PROCESS, str(group.ledger_path("b")), "b",
                                   group.uuid], env={**os.environ, "PYTHONPATH": str(REPO)},
                                  stdout=subprocess.PIPE, text=True)
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "busy"
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=10)
        # Its flag outlives it (2 when b's own tenant, started 0.2 s after a's, already runs: a busy host).
        assert read_claim_usage(group.ledger_path("b")).npending >= 1

    _expect_30_70(_staggered(group, kill_b))  # b's next process, 0.2 s later, gets its 70 % again
