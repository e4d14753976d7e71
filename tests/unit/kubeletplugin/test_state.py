"""Prepare and unprepare: idempotent, rolled back on failure, per-node capacity held, restarts recovered."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dra_driver.core.devices import GIB, Device, Scheduling
from kubeletplugin import cdi, limitsfile
from kubeletplugin.checkpoint import ClaimState, PreparedClaim
from kubeletplugin.checkpoint_store import CheckpointStore
from kubeletplugin.claims import ClaimError
from kubeletplugin.paths import NodePaths, limits_path
from kubeletplugin.recovery import recover
from kubeletplugin.state import ClaimKey, ClaimPreparer
from shim.ledger import Board, ClaimLedger, read_claim_usage
from shim.limits import DeviceLimits, read_limits_file
from tests.support.plugin_claims import NODE, claim, npu, result, shared
from tests.support.plugin_preparer import MemoryReader, damage_ledger, node_preparer


def _paths(tmp_path: Path) -> NodePaths:
    return NodePaths(state_dir=tmp_path / "state", run_dir=tmp_path, cdi_dir=tmp_path / "cdi")


def _preparer(tmp_path: Path, reader: MemoryReader, devices: list[Device] | None = None) -> ClaimPreparer:
    return node_preparer(tmp_path, reader, paths=_paths(tmp_path), devices=devices, load=False)


def _started(tmp_path: Path, reader: MemoryReader) -> ClaimPreparer:
    """A preparer with its (possibly empty) checkpoint loaded, as at a plugin's first start."""
    return node_preparer(tmp_path, reader, paths=_paths(tmp_path))


@pytest.fixture
def reader() -> MemoryReader:
    return MemoryReader()


@pytest.fixture
def preparer(tmp_path: Path, reader: MemoryReader) -> ClaimPreparer:
    return _started(tmp_path, reader)


def test_the_limits_file_tells_the_shim_how_each_device_shares_its_time(tmp_path: Path,
                                                                        reader: MemoryReader) -> None:
    sliced = replace(npu(1), scheduling=Scheduling.TIME_SLICED)
    preparer = _preparer(tmp_path, reader, [npu(0), sliced])
    preparer.store.load()
    serial_key = reader.add(claim(uid="uid-serial", name="a", results=[shared("npu-0", memory="1Gi")]))
    sliced_key = reader.add(claim(uid="uid-sliced", name="b", results=[shared("npu-1", memory="1Gi")]))
    preparer.prepare(serial_key)
    preparer.prepare(sliced_key)
    written = {key.uid: read_limits_file(limits_path(tmp_path / "limits", key.uid)).devices[0].scheduling
               for key in (serial_key, sliced_key)}
    assert written == {"uid-serial": Scheduling.SERIAL, "uid-sliced": Scheduling.TIME_SLICED}


def test_prepare_writes_limits_spec_and_checkpoint_and_is_idempotent(
    preparer: ClaimPreparer, reader: MemoryReader, tmp_path: Path
) -> None:
    key = reader.add(claim(results=[shared("npu-1", memory="8Gi", cores="30")]))
    devices = preparer.prepare(key)
    assert [(d.device, d.memory_bytes, d.core_percent) for d in devices] == [("npu-1", 8 * GIB, 30)]
    assert devices[0].cdi_device_ids == (f"xpushare.io/claim={key.uid}-npu-1",)
    limits = read_limits_file(limits_path(tmp_path / "limits", key.uid))
    assert limits.claim_uid == key.uid
    assert limits.devices == (
        DeviceLimits(
            uuid="NPU-UUID-1",
            index=0,
            memory_limit_bytes=8 * GIB,
            core_percent=30,
            priority="normal",
            policy="guaranteed",
            ledger_path=f"{cdi.CONTAINER_CLAIMS_DIR}/{key.uid}/NPU-UUID-1",
            board_path=f"{cdi.CONTAINER_DEVICES_DIR}/NPU-UUID-1/board",
            physical=1,  # the minor of its node: how the shim finds the chip whatever its logical id
        ),
    )
    assert cdi.spec_path(tmp_path / "cdi", key.uid).exists()
    paths = _paths(tmp_path)
    with Board.read_only(paths.board("NPU-UUID-1")) as board:
        assert board.total_bytes == 64 * GIB
        entry = board.entry(key.uid)
    assert entry is not None
    assert (entry.limit_bytes, entry.core_percent, entry.policy) == (8 * GIB, 30, "guaranteed")
    usage = read_claim_usage(paths.claim_ledger("NPU-UUID-1", key.uid))
    assert (usage.key, usage.limit_bytes, usage.core_percent) == (key.uid, 8 * GIB, 30)
    recorded = preparer.store.get(key.uid)
    assert recorded is not None
    assert recorded.state is ClaimState.PREPARE_COMPLETED
    assert preparer.prepare(key) == devices
    assert reader.gets == 1  # the second prepare answered from the checkpoint


def test_unprepare_removes_everything_and_twice_is_fine(
    preparer: ClaimPreparer, reader: MemoryReader, tmp_path: Path
) -> None:
    key = reader.add(claim(results=[shared("npu-0")]))
    preparer.prepare(key)
    preparer.unprepare(key)
    preparer.unprepare(key)
    assert list((tmp_path / "cdi").iterdir()) == []
    assert list((tmp_path / "limits").iterdir()) == []
    assert preparer.store.claims() == {}
    assert preparer.accounting.used("NPU-UUID-0") == (0, 0)
    paths = _paths(tmp_path)
    with Board.read_only(paths.board("NPU-UUID-0")) as board:
        assert board.entries() == ()
    assert list((paths.device_dir("NPU-UUID-0") / "claims").iterdir()) == []


def test_failed_write_rolls_back_the_half_done_prepare(
    preparer: ClaimPreparer, reader: MemoryReader, tmp_path: Path
) -> None:
    (tmp_path / "cdi").write_text("a file where the CDI directory should be")
    key = reader.add(claim(results=[shared("npu-0", memory="64Gi")]))
    with pytest.raises(cdi.CdiError):
        preparer.prepare(key)
    assert preparer.store.claims() == {}
    assert list((tmp_path / "limits").iterdir()) == []
    assert preparer.accounting.used("NPU-UUID-0") == (0, 0)


def test_overcommit_refuses_that_claim_only(preparer: ClaimPreparer, reader: MemoryReader) -> None:
    first = reader.add(claim(name="first", results=[shared("npu-0", memory="48Gi")]))
    second = reader.add(claim(name="second", results=[shared("npu-0", memory="32Gi")]))
    preparer.prepare(first)
    with pytest.raises(Exception, match=r"claim default/second .*over-committed: memory"):
        preparer.prepare(second)
    assert set(preparer.store.claims()) == {first.uid}


def test_claim_missing_from_the_api_is_a_clear_error(preparer: ClaimPreparer) -> None:
    with pytest.raises(ClaimError, match=r"claim default/ghost .*not found"):
        preparer.prepare(ClaimKey("default", "ghost", "u-1"))


def test_hundred_concurrent_claims_on_one_device_never_exceed_it(
    preparer: ClaimPreparer, reader: MemoryReader
) -> None:
    keys = [
        reader.add(claim(name=f"c{n}", results=[shared("npu-0", memory="1Gi", cores="3")]))
        for n in range(100)
    ]
    outcomes: dict[str, bool] = {}
    gate = threading.Barrier(20)

    def worker(chunk: list[ClaimKey]) -> None:
        gate.wait()
        for key in chunk:
            try:
                preparer.prepare(key)
                outcomes[key.uid] = True
            except Exception:
                outcomes[key.uid] = False

    threads = [threading.Thread(target=worker, args=(keys[n::20],)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(outcomes.values()) == 33
    held = list(preparer.store.claims().values())
    assert sum(d.core_percent for c in held for d in c.devices) == 99


def test_restart_recreates_files_of_checkpointed_claims(tmp_path: Path, reader: MemoryReader) -> None:
    first = _started(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0")]))
    first.prepare(key)
    spec = cdi.spec_path(tmp_path / "cdi", key.uid)
    before = spec.read_text()
    spec.unlink()  # /var/run/cdi is tmpfs: a reboot empties it
    limits_path(tmp_path / "limits", key.uid).unlink()
    second = _preparer(tmp_path, reader)
    report = recover(second, NODE)
    assert report.restored == [key.uid]
    assert spec.read_text() == before
    assert limits_path(tmp_path / "limits", key.uid).exists()
    assert second.accounting.used("NPU-UUID-0")[0] == 16 * GIB


def test_claims_deleted_while_down_are_cleaned_up_and_leftovers_swept(
    tmp_path: Path, reader: MemoryReader
) -> None:
    first = _started(tmp_path, reader)
    gone = reader.add(claim(name="gone", results=[shared("npu-0")]))
    kept = reader.add(claim(name="kept", results=[shared("npu-0")]))
    first.prepare(gone)
    first.prepare(kept)
    del reader.claims[("default", "gone")]
    (tmp_path / "cdi" / "xpushare.io-claim_stray.json").write_text("{}")
    report = recover(_preparer(tmp_path, reader), NODE)
    assert report.removed == [gone.uid]
    assert cdi.listed_claims(tmp_path / "cdi") == {kept.uid}
    assert limitsfile.listed_claims(tmp_path / "limits") == {kept.uid}


def test_nothing_is_deleted_when_the_api_server_is_unreachable(tmp_path: Path, reader: MemoryReader) -> None:
    first = _started(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0")]))
    first.prepare(key)
    reader.claims.clear()
    reader.down = True
    assert recover(_preparer(tmp_path, reader), NODE).restored == [key.uid]


def test_half_done_prepare_is_rolled_back_at_start(tmp_path: Path, reader: MemoryReader) -> None:
    first = _started(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0")]))
    devices = first.prepare(key)
    started = PreparedClaim(key.uid, key.namespace, key.name, ClaimState.PREPARE_STARTED, tuple(devices))
    first.store.put(started)
    second = _preparer(tmp_path, reader)
    assert recover(second, NODE).removed == [key.uid]
    assert cdi.listed_claims(tmp_path / "cdi") == set()
    assert second.prepare(key) == devices  # the kubelet's retry prepares it afresh


def test_corrupt_checkpoint_is_reported_and_rebuilt_from_the_api(
    tmp_path: Path, reader: MemoryReader
) -> None:
    first = _started(tmp_path, reader)
    in_use = reader.add(claim(name="in-use", results=[shared("npu-0")]))
    idle = reader.add(claim(name="idle", results=[shared("npu-1")], reserved=False))
    elsewhere = reader.add(claim(name="elsewhere", results=[result("npu-0", pool="node-b")]))
    first.prepare(in_use)
    (tmp_path / f"state/checkpoint/{in_use.uid}.json").write_text('{"version": "v1", "data": {"claim": "garb')
    second = _preparer(tmp_path, reader)
    report = recover(second, NODE)
    assert report.corrupt is not None
    assert [reason for reason, _ in reader.events] == ["CheckpointCorrupt"]
    assert report.rebuilt == [in_use.uid]
    assert set(CheckpointStore(tmp_path / "state/checkpoint", "boot-1").load()) == {in_use.uid}
    assert idle.uid not in cdi.listed_claims(tmp_path / "cdi")
    assert elsewhere.uid not in cdi.listed_claims(tmp_path / "cdi")


def test_board_entries_and_ledgers_of_unknown_claims_are_swept_at_start(
    tmp_path: Path, reader: MemoryReader
) -> None:
    first = _started(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0", memory="2Gi")]))
    first.prepare(key)
    paths = _paths(tmp_path)
    with Board.open(paths.board("NPU-UUID-0"), "NPU-UUID-0", 64 * GIB) as board:
        board.set("crashed-before-record", 4 * GIB, 10)
    ClaimLedger.create(paths.claim_ledger("NPU-UUID-0", "crashed-before-record"), "crashed-before-record",
                       "NPU-UUID-0", 4 * GIB, 10)
    leftover = paths.device_dir("NPU-UUID-0") / "claims" / ".x.123.tmp"
    leftover.write_bytes(b"half")
    recover(_preparer(tmp_path, reader), NODE)
    with Board.read_only(paths.board("NPU-UUID-0")) as board:
        assert [e.key for e in board.entries()] == [key.uid]
    assert [p.name for p in (paths.device_dir("NPU-UUID-0") / "claims").iterdir()] == [key.uid]


@pytest.mark.parametrize("damage", ["magic", "short", "long"])
def test_a_damaged_board_is_rebuilt_in_place_at_start_with_the_prepared_claims(
    tmp_path: Path, reader: MemoryReader, damage: str
) -> None:
    first = _started(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0", memory="2Gi", cores="20")]))
    first.prepare(key)
    board = _paths(tmp_path).board("NPU-UUID-0")
    inode = board.stat().st_ino
    data = board.read_bytes()
    board.write_bytes({"magic": b"\0" * 8 + data[8:], "short": data[:100], "long": data + b"x" * 100}[damage])
    recover(_preparer(tmp_path, reader), NODE)
    assert board.stat().st_ino == inode  # running shims keep their mapping of it
    with Board.read_only(board) as rebuilt:
        entries = rebuilt.entries()
    assert [(e.key, e.limit_bytes, e.core_percent) for e in entries] == [(key.uid, 2 * GIB, 20)]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "directory", "another claim's"])
def test_a_claim_ledger_its_tenant_damaged_never_stops_unprepare_start_or_other_claims(
    tmp_path: Path, reader: MemoryReader, damage: str
) -> None:
    first = _started(tmp_path, reader)
    hurt = reader.add(claim("hurt", results=[shared("npu-0", memory="2Gi")]))
    first.prepare(hurt)
    damage_ledger(_paths(tmp_path).claim_ledger("NPU-UUID-0", hurt.uid), damage)
    second = _preparer(tmp_path, reader)
    recover(second, NODE)  # starts
    other = reader.add(claim("other", results=[shared("npu-0", memory="2Gi")]))
    assert second.prepare(other)  # the same device's other claims still prepare
    elsewhere = reader.add(claim("elsewhere", results=[shared("npu-1", memory="2Gi")]))
    assert second.prepare(elsewhere)
    second.unprepare(hurt)
    assert hurt.uid not in second.store.claims()


def test_locks_a_tenant_takes_on_the_files_it_can_open_never_stall_the_plugin(
    tmp_path: Path, reader: MemoryReader
) -> None:
    """A container can open its own ledger read-write and the board and its peers' ledgers read-only, and
    flock or fcntl-lock any of them; the plugin takes no lock on them, so it never waits."""
    first = _started(tmp_path, reader)
    key = reader.add(claim("locker", results=[shared("npu-0", memory="2Gi")]))
    first.prepare(key)
    paths = _paths(tmp_path)
    held = []
    for path in (paths.board("NPU-UUID-0"), paths.claim_ledger("NPU-UUID-0", key.uid)):
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.lockf(fd, fcntl.LOCK_SH)
        held.append(fd)
    try:
        start = time.monotonic()
        second = _preparer(tmp_path, reader)
        recover(second, NODE)  # re-registers the claim: its board entry and its (existing) ledger
        other = reader.add(claim("other", results=[shared("npu-0", memory="2Gi")]))
        assert second.prepare(other)
        second.unprepare(key)
        assert time.monotonic() - start < 3.0
    finally:
        for fd in held:
            os.close(fd)
