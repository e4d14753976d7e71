"""The Python API of claim ledgers and boards, running the shim's own C code on real files."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.simulation.cbuild import have_compiler
from shim import library_path
from shim.ledger import (
    Board,
    BoardEntry,
    ClaimLedger,
    LedgerError,
    _binding,
    cdef_source,
    read_claim_usage,
)
from tests.support.shimlib import build_program, build_shim

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _compiled_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    if not have_compiler():
        pytest.skip("no C compiler: the shim cannot be built")
    monkeypatch.setenv("XPUSHARE_SHIM_LIBRARY", str(build_shim()))


def test_create_writes_a_claims_ledger_whole_with_its_limits(tmp_path: Path) -> None:
    path = tmp_path / "claim-a"
    os.umask(0o077)
    try:
        assert ClaimLedger.create(path, "claim-a", "GPU-1", 10 * MIB, 30, priority=Priority.HIGH,
                              policy=ComputePolicy.FIXED)
    finally:
        os.umask(0o022)
    usage = read_claim_usage(path)
    assert (usage.key, usage.uuid) == ("claim-a", "GPU-1")
    assert (usage.limit_bytes, usage.core_percent) == (10 * MIB, 30)
    assert (usage.priority, usage.policy, usage.used_bytes) == ("high", "fixed", 0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666  # the claim's processes run under any user
    assert [p.name for p in tmp_path.iterdir()] == ["claim-a"]  # no temp file left beside it
    assert not ClaimLedger.create(path, "claim-a", "GPU-1", 99 * MIB)  # an existing one is kept as it is
    assert read_claim_usage(path).limit_bytes == 10 * MIB


def test_another_claims_or_devices_ledger_is_never_joined(tmp_path: Path) -> None:
    path = tmp_path / "claim-a"
    ClaimLedger.create(path, "claim-a", "GPU-1", MIB)
    with pytest.raises(LedgerError, match="EBADSLT"):
        ClaimLedger.open(path, "claim-b", "GPU-1")
    with pytest.raises(LedgerError, match="EBADSLT"):
        ClaimLedger.open(path, "claim-a", "GPU-2")


def test_the_limits_bound_admission_together_with_the_files_limit(tmp_path: Path) -> None:
    with ClaimLedger.open(tmp_path / "claim-a", "claim-a", "GPU-1") as ledger:
        assert ledger.set_limits(10 * MIB, 30, Priority.HIGH, ComputePolicy.FIXED)
        proc = ledger.attach_process()
        assert ledger.reserve(proc, 10 * MIB, 20 * MIB)
        assert not ledger.reserve(proc, 1, 20 * MIB)  # the ledger's 10 MiB is the lower limit
        ledger.set_limits(30 * MIB)
        assert ledger.reserve(proc, 10 * MIB, 20 * MIB)
        assert not ledger.reserve(proc, 1, 20 * MIB)  # now the file's 20 MiB binds
        ledger.release(proc, 5 * MIB)
        usage = ledger.usage()
        assert (usage.used_bytes, usage.peak_bytes, usage.nprocs) == (15 * MIB, 20 * MIB, 1)
        assert (usage.core_percent, usage.priority, usage.policy) == (100, "normal", "guaranteed")
        assert not ledger.set_limits(30 * MIB)  # unchanged


def test_release_never_underflows(tmp_path: Path) -> None:
    with ClaimLedger.open(tmp_path / "claim-a", "claim-a", "GPU-1") as ledger:
        proc = ledger.attach_process()
        assert ledger.reserve(proc, 100, 0)
        ledger.release(proc, 1000)
        assert ledger.usage().used_bytes == 0
        assert ledger.processes()[0].used_bytes == 0


def test_bad_arguments_raise_clear_errors(tmp_path: Path) -> None:
    with ClaimLedger.open(tmp_path / "claim-a", "claim-a", "GPU-1") as ledger:
        with pytest.raises(LedgerError, match="cores 101"):
            ledger.set_limits(0, core_percent=101)
        with pytest.raises(LedgerError, match="priority"):
            ledger.set_limits(0, priority="urgent")  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="Invalid argument"):
        ClaimLedger.open(tmp_path / "other", "k" * 64)
    with pytest.raises(LedgerError, match="No such file"):
        read_claim_usage(tmp_path / "missing")


@pytest.mark.parametrize("damage", ["version", "short", "empty", "directory", "fifo"])
def test_a_ledger_the_reader_cannot_use_is_refused_without_blocking(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "claim-a"
    if damage == "directory":
        path.mkdir()
    elif damage == "fifo":
        os.mkfifo(path)  # opened non-blocking: no writer needed
    else:
        ClaimLedger.create(path, "claim-a", "GPU-1", MIB)
        data = bytearray(path.read_bytes())
        data[8] = 99  # version
        path.write_bytes({"version": bytes(data), "short": bytes(data[:100]), "empty": b""}[damage])
    start = time.monotonic()
    with pytest.raises(LedgerError, match="claim ledger"):
        read_claim_usage(path)
    assert time.monotonic() - start < 1
    if damage == "version":
        with pytest.raises(LedgerError, match="Protocol error"):
            ClaimLedger.open(path)


def _python(script: str, *args: object) -> subprocess.Popen[str]:
    """``script`` in another Python process (the project importable), its stdout a pipe."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            text=True)


CHILD = """
import sys, time
from pathlib import Path
from shim.ledger import ClaimLedger
ledger = ClaimLedger.open(Path(sys.argv[1]), "claim-a", "GPU-1")
proc = ledger.attach_process()
assert ledger.reserve(proc, int(sys.argv[2]), 0)
print("held", flush=True)
time.sleep(60)
"""


def test_reclaim_returns_the_bytes_of_a_killed_process_only(tmp_path: Path) -> None:
    path = tmp_path / "claim-a"
    ClaimLedger.create(path, "claim-a", "GPU-1", 0)
    children = [_python(CHILD, path, size) for size in (3 * MIB, 5 * MIB)]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "held"
        with ClaimLedger.open(path) as ledger:
            assert ledger.reclaim_dead() == 0
            os.kill(children[0].pid, signal.SIGKILL)
            children[0].communicate(timeout=10)
            time.sleep(0.05)
            assert ledger.reclaim_dead() == 1
            usage = ledger.usage()
            assert (usage.used_bytes, usage.reclaimed_bytes) == (5 * MIB, 3 * MIB)
            processes = ledger.processes()
            assert [p.pid for p in processes] == [children[1].pid]
            assert processes[0].start_time > 0
    finally:
        for child in children:
            child.kill()
            child.communicate(timeout=10)


def test_a_board_is_created_0644_and_rebuilt_in_place_when_damaged(tmp_path: Path) -> None:
    path = tmp_path / "board"
    with Board.open(path, "GPU-1", 80 << 30) as board:
        assert board.set("claim-a", MIB, 30, Priority.HIGH, ComputePolicy.FIXED) == 0
        assert board.set("claim-b", 2 * MIB) == 1
        # unchanged: same entry, same generation
        assert board.set("claim-a", MIB, 30, Priority.HIGH, ComputePolicy.FIXED) == 0
        generation = board.generation
        board.remove("claim-a")
        board.remove("claim-a")  # idempotent
        assert [e.key for e in board.entries()] == ["claim-b"]
        assert board.generation == generation + 1
        assert (board.uuid, board.total_bytes) == ("GPU-1", 80 << 30)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # written by the plugin alone
    inode = path.stat().st_ino
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # the magic
    path.write_bytes(bytes(data) + b"tail")
    with pytest.raises(LedgerError):
        Board.read_only(path)
    with Board.open(path, "GPU-1") as rebuilt:
        assert rebuilt.entries() == ()  # cleared: the plugin refills it from its checkpoint
    assert path.stat().st_ino == inode  # in place: running shims keep seeing it
    with Board.read_only(path) as readable:
        assert readable.uuid == "GPU-1"


def test_a_full_board_refuses_a_65th_claim(tmp_path: Path) -> None:
    with Board.open(tmp_path / "board", "GPU-1") as board:
        for n in range(64):
            board.set(f"claim-{n}", MIB)
        with pytest.raises(LedgerError, match="No space left"):
            board.set("claim-64", MIB)
        board.set("claim-3", 2 * MIB)  # an update still fits


WRITER = """
import sys, time
from pathlib import Path
from shim.ledger import Board
from api.v1alpha1.sharing import ComputePolicy, Priority
ranked, policies = Priority.ranked(), (ComputePolicy.GUARANTEED, ComputePolicy.FIXED)
with Board.open(Path(sys.argv[1]), "GPU-1") as board:
    print("writing", flush=True)
    n, end = 0, time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        n = (n + 1) % 101
        board.set("claim-a", n * (1 << 20), n, ranked[n % 3], policies[n % 2])
"""


def _consistent(entry: BoardEntry) -> bool:
    """Whether every field of an entry the writer above wrote comes from one and the same write."""
    n = entry.core_percent
    return (entry.key, entry.limit_bytes, entry.priority, entry.policy) == (
        "claim-a", n * MIB, Priority.ranked()[n % 3], (ComputePolicy.GUARANTEED, ComputePolicy.FIXED)[n % 2])


def test_board_readers_never_see_a_torn_entry(tmp_path: Path) -> None:
    """The plugin writes while shims read (another process, on another core): a reader gets each entry
    whole, or retries; never fields of two different writes."""
    path = tmp_path / "board"
    with Board.open(path, "GPU-1") as board:
        board.set("claim-a", 0, 0, Priority.LOW)  # as the writer writes n = 0
    writer = _python(WRITER, path, 3)
    seen = set()
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        with Board.read_only(path) as reader:
            for _ in range(3000):
                entry = reader.entry("claim-a")
                assert entry is not None
                assert _consistent(entry), entry
                seen.add(entry.core_percent)
    finally:
        writer.kill()
        writer.communicate(timeout=10)
    assert len(seen) > 10, "the writer never changed the entry under the reader: the test proved nothing"


def test_board_reads_racing_a_writer_on_another_core_are_never_torn(tmp_path: Path) -> None:
    """The same in C, at full speed: a writer process and a reader process in tight loops."""
    hammer, library, path = build_program("board_hammer"), build_shim(), tmp_path / "board"
    with Board.open(path, "GPU-1") as board:
        board.set("claim-a", 0, 0, Priority.LOW)
    writer = subprocess.Popen([str(hammer), str(library), str(path), "write", "2.5"], stdout=subprocess.PIPE,
                              text=True)
    try:
        time.sleep(0.2)
        read = subprocess.run([str(hammer), str(library), str(path), "read", "1.5"], capture_output=True,
                              text=True, timeout=60, check=True)
    finally:
        out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0, out
    assert out.startswith("write ok="), out
    counts = dict(part.split("=") for part in read.stdout.split()[1:])
    assert counts["torn"] == "0", read.stdout
    assert int(counts["ok"]) > 10_000, read.stdout
    assert int(counts["distinct"]) > 50, read.stdout  # the entry changed under the reader: it did race


def test_a_board_and_a_ledger_refuse_bad_values_with_einval(tmp_path: Path) -> None:
    with Board.open(tmp_path / "board", "GPU-1") as board:
        for key, cores in (("claim-a", 101), ("k" * 64, 10), ("", 10)):
            with pytest.raises(LedgerError, match="EINVAL"):
                board.set(key, MIB, cores)
        assert board.entries() == ()
    with ClaimLedger.open(tmp_path / "claim-a", "claim-a", "GPU-1") as ledger:
        proc = ledger.attach_process()
        for bad in (-1, 1024):
            with pytest.raises(LedgerError, match="EINVAL"):
                ledger.admit(bad, 1)
            with pytest.raises(LedgerError, match="EINVAL"):
                ledger.set_pending(bad, True)
            with pytest.raises(LedgerError, match="EINVAL"):
                ledger.reserve(bad, 1, 0)
        ledger.reserve(proc, 1, 0)
        assert ledger.usage().used_bytes == 1
    # What Python cannot pass, the C entry points refuse too: the shim copies board values through them.
    ffi, lib = _binding(str(library_path()))
    with ClaimLedger.open(tmp_path / "claim-a", "claim-a", "GPU-1") as ledger:
        raw = ledger._live()
        assert lib.xpushare_ledger_set_limits(raw, 0, 50, 3, 0) == -errno.EINVAL  # priority
        assert lib.xpushare_ledger_set_limits(raw, 0, 50, 1, 2) == -errno.EINVAL  # policy
        peers = ffi.new("struct xpushare_peers *")
        assert lib.xpushare_peers_add(peers, ffi.addressof(raw.head), 3, 1) == -errno.EINVAL
        assert peers.count == 0
    with Board.read_only(tmp_path / "board") as reader:
        entry = ffi.new("struct xpushare_board_entry *")
        assert lib.xpushare_board_read(reader._live(), 64, entry, ffi.NULL) == -errno.EINVAL
        assert lib.xpushare_board_read(reader._live(), -1, entry, ffi.NULL) == -errno.EINVAL


DIES_MID_UPDATE = """
import ctypes, sys, time
from pathlib import Path
from shim.ledger import ClaimLedger
MIB = 1 << 20
ledger = ClaimLedger.open(Path(sys.argv[1]), "claim-a", "GPU-1")
proc = ledger.attach_process()
assert ledger.reserve(proc, 3 * MIB, 0)
ledger.set_pending(proc, True)
ffi, raw = ledger._ffi, ledger._live()
lock = ctypes.CDLL(None).pthread_mutex_lock
# An update as the C code makes one, cut off half-way: the journal first, then the claim's counters...
assert lock(ctypes.c_void_p(int(ffi.cast("uintptr_t", raw.lock)))) == 0
raw.journal.saved_claim = raw.head.claim
raw.journal.saved_proc = raw.procs[proc]
raw.journal.proc = proc
raw.journal.active = 1
raw.head.claim.used_bytes += 5 * MIB
raw.head.claim.peak_bytes = 8 * MIB
# ...and the pending counts, changed under their own lock.
assert lock(ctypes.c_void_p(int(ffi.cast("uintptr_t", raw.compute_lock)))) == 0
raw.head.claim.npending = 7
print("mid-update", flush=True)
time.sleep(60)
"""


def test_a_process_killed_inside_an_update_is_rolled_back_by_the_next_locker(tmp_path: Path) -> None:
    path = tmp_path / "claim-a"
    ClaimLedger.create(path, "claim-a", "GPU-1", 0)
    child = _python(DIES_MID_UPDATE, path)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "mid-update"
        assert read_claim_usage(path).used_bytes == 8 * MIB  # the half-made update is in the file
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=10)
        with ClaimLedger.open(path, "claim-a", "GPU-1") as ledger:
            proc = ledger.attach_process()  # the next locker: the journal is rolled back first
            usage = ledger.usage()
            assert (usage.used_bytes, usage.peak_bytes, usage.nprocs) == (3 * MIB, 3 * MIB, 2)
            ledger.set_pending(proc, True)  # the pending count is recounted from the process records
            assert ledger.usage().npending == 2
            assert ledger.reclaim_dead() == 1
            usage = ledger.usage()
            assert (usage.used_bytes, usage.reclaimed_bytes) == (0, 3 * MIB)
            assert (usage.nprocs, usage.npending) == (1, 1)
            assert ledger.reserve(proc, MIB, 0)  # both locks work again
            ledger.set_pending(proc, False)
            assert ledger.usage().npending == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=10)


def test_the_cdef_is_the_headers_marked_section() -> None:
    text = cdef_source()
    assert "struct xpushare_ledger {" in text
    assert "struct xpushare_board {" in text
    assert "xpushare_ledger_reserve" in text
    assert "XPUSHARE_EXTERN" not in text
    assert "#include" not in text
