"""The Python ledger API, running the shim's own C code on real ledger files."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dra_driver.simulation.cbuild import have_compiler
from shim.ledger import Ledger, LedgerError, cdef_source
from tests.support.shimlib import build_shim

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _compiled_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    if not have_compiler():
        pytest.skip("no C compiler: the shim cannot be built")
    monkeypatch.setenv("XPUSHARE_SHIM_LIBRARY", str(build_shim()))


def test_create_initialises_a_shared_file_with_the_device_identity(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    with Ledger.create(path, "GPU-1", 80 << 30) as ledger:
        snapshot = ledger.snapshot()
    assert (snapshot.uuid, snapshot.total_bytes, snapshot.used_bytes) == ("GPU-1", 80 << 30, 0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666  # every container on the device maps it
    with Ledger.create(path, "ignored", 1) as again:  # an existing ledger keeps its identity
        assert again.snapshot().uuid == "GPU-1"


def test_container_limits_bound_admission_together_with_the_files_limit(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "ledger", "GPU-1") as ledger:
        index = ledger.set_container("claim-a", 10 * MIB, core_percent=30, priority="high", policy="fixed")
        assert index == 0
        proc = ledger.attach_process("claim-a", 20 * MIB)
        assert ledger.reserve(proc, 10 * MIB, 20 * MIB)
        assert not ledger.reserve(proc, 1, 20 * MIB)  # the ledger's 10 MiB is the lower limit
        ledger.set_container("claim-a", 30 * MIB)
        assert ledger.reserve(proc, 10 * MIB, 20 * MIB)
        assert not ledger.reserve(proc, 1, 20 * MIB)  # now the file's 20 MiB binds
        ledger.release(proc, 5 * MIB)
        container = ledger.snapshot().container("claim-a")
        assert container is not None
        assert (container.used_bytes, container.peak_bytes, container.nprocs) == (15 * MIB, 20 * MIB, 1)
        assert (container.core_percent, container.priority, container.policy) == (100, "normal", "guaranteed")


def test_release_never_underflows(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "ledger", "GPU-1") as ledger:
        proc = ledger.attach_process("claim-a", 0)
        assert ledger.reserve(proc, 100, 0)
        ledger.release(proc, 1000)
        snapshot = ledger.snapshot()
        assert snapshot.used_bytes == 0
        assert snapshot.processes[0].used_bytes == 0


def test_a_container_with_processes_cannot_be_removed(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "ledger", "GPU-1") as ledger:
        proc = ledger.attach_process("claim-a", 0)
        with pytest.raises(LedgerError, match="busy"):
            ledger.remove_container("claim-a")
        ledger.detach_process(proc)
        ledger.remove_container("claim-a")
        ledger.remove_container("claim-a")  # idempotent
        assert ledger.snapshot().containers == ()


def test_bad_arguments_raise_clear_errors(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "ledger", "GPU-1") as ledger:
        with pytest.raises(LedgerError, match="cores 101"):
            ledger.set_container("claim-a", 0, core_percent=101)
        with pytest.raises(LedgerError, match="priority"):
            ledger.set_container("claim-a", 0, priority="urgent")
        with pytest.raises(LedgerError, match="Invalid argument"):
            ledger.set_container("k" * 64, 0)
    with pytest.raises(LedgerError, match="no such ledger"):
        Ledger.attach(tmp_path / "missing")


def test_a_ledger_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    Ledger.create(path, "GPU-1").close()
    data = bytearray(path.read_bytes())
    data[8] = 99  # version
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError, match="Protocol error"):
        Ledger.attach(path)


CHILD = """
import sys, time
from pathlib import Path
from shim.ledger import Ledger
ledger = Ledger.create(Path(sys.argv[1]), "GPU-1")
proc = ledger.attach_process("claim-a", 0)
assert ledger.reserve(proc, int(sys.argv[2]), 0)
print("held", flush=True)
time.sleep(60)
"""


def test_reclaim_returns_the_bytes_of_a_killed_process_only(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(size)], env=env,
                                 stdout=subprocess.PIPE, text=True) for size in (3 * MIB, 5 * MIB)]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "held"
        with Ledger.attach(path) as ledger:
            assert ledger.reclaim_dead() == 0
            os.kill(children[0].pid, signal.SIGKILL)
            children[0].communicate(timeout=10)
            time.sleep(0.05)
            assert ledger.reclaim_dead() == 1
            snapshot = ledger.snapshot()
            assert (snapshot.used_bytes, snapshot.reclaimed_bytes) == (5 * MIB, 3 * MIB)
            assert [p.pid for p in snapshot.processes] == [children[1].pid]
            assert snapshot.processes[0].start_time > 0
    finally:
        for child in children:
            child.kill()
            child.communicate(timeout=10)


def test_the_cdef_is_the_headers_marked_section() -> None:
    text = cdef_source()
    assert "struct xpushare_ledger {" in text
    assert "xpushare_ledger_reserve" in text
    assert "XPUSHARE_EXTERN" not in text
    assert "#include" not in text
