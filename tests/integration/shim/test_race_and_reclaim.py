"""Many processes at once: the limit holds to the byte, and dead processes' memory comes back."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.shim.conftest import MIB, claim_processes, claim_usage
from tests.support.shimlib import ShimSetup

RACERS = 16


@pytest.mark.parametrize("plugin", [True, False], ids=["plugin-layout", "without-plugin"])
def test_sixteen_racing_processes_never_pass_the_limit_by_one_byte(setup: ShimSetup, cuda_client: Path,
                                                                   plugin: bool) -> None:
    setup.plugin = plugin  # the ledger the plugin created, or one the racers create among themselves
    limit = 48 * MIB + 12345
    setup.add_device(0, limit)
    env = setup.env()
    command = [str(cuda_client), "dlsym", "--", "race", str(MIB), "2000", "freeall"]
    racers = [subprocess.Popen(command, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(RACERS)]
    outputs = [p.communicate(timeout=120) for p in racers]
    assert all(p.returncode == 0 for p in racers), outputs
    failures = sum(int(re.findall(r"failed=(\d+)", out)[0]) for out, _ in outputs)
    assert failures > 0, "the race never reached the limit, so it proved nothing"
    container = claim_usage(setup.ledger_path())
    assert limit - 2 * MIB < container.peak_bytes <= limit  # the ledger's high-water mark
    assert setup.cuda_state.peak() <= limit  # what the device really held, at its worst moment
    assert container.used_bytes == 0
    assert setup.cuda_state.allocated() == 0


def _holder(setup: ShimSetup, client: Path, size: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(client), "dlsym", "--", "alloc", str(size), "ready"], env=setup.env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "alloc rc=0"
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_memory_of_a_sigkilled_process_returns_within_a_second(setup: ShimSetup, cuda_client: Path) -> None:
    setup.add_device(0, 10 * MIB)
    victim = _holder(setup, cuda_client, 8 * MIB)
    blocked = setup.run([cuda_client, "dlsym", "--", "alloc", 4 * MIB])
    assert blocked.codes("alloc") == [2]
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=10)
    killed_at = time.monotonic()
    while True:
        retry = setup.run([cuda_client, "dlsym", "--", "alloc", 4 * MIB, "info"])
        if retry.codes("alloc") == [0] or time.monotonic() - killed_at > 1.0:
            break
        time.sleep(0.05)
    assert retry.codes("alloc") == [0], "a SIGKILLed process's memory was not returned within 1 s"
    assert retry.value("info", "free") == 6 * MIB  # exact: the victim's 8 MiB are all back
    snapshot = claim_usage(setup.ledger_path())
    assert snapshot.reclaimed_bytes == 8 * MIB
    assert snapshot.used_bytes == 0
    assert claim_processes(setup.ledger_path()) == ()


def test_many_kills_leave_the_ledger_exact(setup: ShimSetup, cuda_client: Path) -> None:
    setup.add_device(0, 64 * MIB)
    victims = [_holder(setup, cuda_client, (i + 1) * MIB) for i in range(6)]
    assert claim_usage(setup.ledger_path()).used_bytes == 21 * MIB
    for victim in victims:
        victim.kill()
        victim.communicate(timeout=10)
    time.sleep(0.25)  # past the periodic scan interval
    result = setup.run([cuda_client, "dlsym", "--", "info"])
    assert result.value("info", "free") == 64 * MIB
    snapshot = claim_usage(setup.ledger_path())
    processes = claim_processes(setup.ledger_path())
    assert (snapshot.used_bytes, snapshot.reclaimed_bytes, processes) == (0, 21 * MIB, ())


def test_a_forked_child_gets_its_own_slot_and_returns_its_memory(setup: ShimSetup, cuda_client: Path) -> None:
    setup.add_device(0, 10 * MIB)
    result = setup.run([cuda_client, "dlsym", "--", "alloc", 4 * MIB, "forkalloc", 5 * MIB, "info",
                        "alloc", 2 * MIB])
    assert result.lines("child alloc") == ["child alloc rc=0"]
    # The child exited without freeing: its 5 MiB come back (its slot is dead), the parent's 4 MiB stay.
    assert result.codes("alloc") == [0, 0]
    container = claim_usage(setup.ledger_path())
    assert container.peak_bytes == 9 * MIB
    assert container.used_bytes == 0


def test_processes_killed_in_the_middle_of_allocating_leave_the_ledger_exact(setup: ShimSetup,
                                                                            cuda_client: Path) -> None:
    setup.add_device(0, 32 * MIB)
    env = setup.env()
    racers = [subprocess.Popen([str(cuda_client), "dlsym", "--", "race", str(MIB), "100000000"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(8)]
    deadline = time.monotonic() + 5
    while claim_usage(setup.ledger_path()).peak_bytes < 16 * MIB and time.monotonic() < deadline:
        time.sleep(0.02)
    for racer in racers:  # killed mid-loop: some inside the ledger's critical section
        racer.kill()
    for racer in racers:
        racer.wait(timeout=10)
    time.sleep(0.25)
    result = setup.run([cuda_client, "dlsym", "--", "info", "fill", MIB])
    assert result.value("info", "free") == 32 * MIB
    assert result.value("fill", "count") == 32
    container = claim_usage(setup.ledger_path())
    assert container.peak_bytes <= 32 * MIB
    assert container.used_bytes == 0
    assert container.nprocs == 0
