"""The node side of each device's files (``<run-dir>/devices/<uuid>/``): the board the plugin alone writes
and the claims' own ledgers, which their tenants can write and the plugin only reads with one pread.

Nothing in them may stop the plugin: a board that cannot be opened costs its own device's claims (with a
clear error) and nothing else; a board of another layout is rebuilt in place and refilled from the
checkpoint; live quota changes land on the board, never in a ledger; modes are explicit whatever the umask.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dra_driver.cli import build_parser
from dra_driver.core.devices import GIB
from kubeletplugin.ledgers import LedgerWriteError
from kubeletplugin.paths import NodePaths
from kubeletplugin.quota import QuotaRequest, apply_quota, show_quota
from kubeletplugin.recovery import recover
from kubeletplugin.state import ClaimPreparer
from shim import library_path
from shim.ledger import Board, ClaimLedger, read_claim_usage
from tests.support.plugin_claims import NODE, claim, shared
from tests.support.plugin_preparer import MemoryReader, node_paths, node_preparer

UUID0, UUID1 = "NPU-UUID-0", "NPU-UUID-1"

pytestmark = pytest.mark.skipif(not library_path().is_file(), reason="the shim library is not built")


def _started(tmp_path: Path, reader: MemoryReader) -> ClaimPreparer:
    """A preparer with its checkpoint loaded, as the plugin builds it at start (before ``recover``)."""
    return node_preparer(tmp_path, reader)


def _restarted(tmp_path: Path, reader: MemoryReader) -> ClaimPreparer:
    """The plugin's start: recovery (which refills the boards), then every device's board made ready."""
    preparer = _started(tmp_path, reader)
    recover(preparer, NODE)
    assert preparer.ledgers is not None
    preparer.ledgers.ensure()
    return preparer


def _entries(board_file: Path) -> list[tuple[str, int, int]]:
    with Board.read_only(board_file) as board:
        return sorted((e.key, e.limit_bytes, e.core_percent) for e in board.entries())


def _break_board(paths: NodePaths, uuid: str) -> None:
    """A directory where the board should be: no open of it can succeed."""
    paths.board(uuid).unlink()
    paths.board(uuid).mkdir()


@pytest.fixture
def reader() -> MemoryReader:
    return MemoryReader()


def test_a_board_that_cannot_be_opened_costs_only_its_own_devices_claims(
    tmp_path: Path, reader: MemoryReader, caplog: pytest.LogCaptureFixture
) -> None:
    first = _started(tmp_path, reader)
    stuck = reader.add(claim("stuck", results=[shared("npu-0", memory="2Gi")]))
    fine = reader.add(claim("fine", results=[shared("npu-1", memory="2Gi")]))
    first.prepare(stuck)
    first.prepare(fine)
    paths = node_paths(tmp_path)
    _break_board(paths, UUID0)

    with caplog.at_level(logging.ERROR, logger="kubeletplugin.ledgers"):
        second = _restarted(tmp_path, reader)  # starts: no exception
    assert any(r.getMessage() == "device board unusable" and getattr(r, "device_uuid", "") == UUID0
               for r in caplog.records)
    assert set(second.store.claims()) == {stuck.uid, fine.uid}  # kept prepared, not forgotten

    newcomer = reader.add(claim("newcomer", results=[shared("npu-0", memory="2Gi")]))
    with pytest.raises(LedgerWriteError, match=rf"device npu-0 files: .*{paths.board(UUID0)}"):
        second.prepare(newcomer)
    assert second.store.get(newcomer.uid) is None
    other = reader.add(claim("other", results=[shared("npu-1", memory="2Gi")]))
    assert second.prepare(other)  # the other device is unaffected
    assert [key for key, *_ in _entries(paths.board(UUID1))] == sorted([fine.uid, other.uid])

    assert second.ledgers is not None
    usage = second.ledgers.usage({UUID0: [stuck.uid], UUID1: [fine.uid, other.uid]})
    assert set(usage[UUID1].claims) == {fine.uid, other.uid}

    with pytest.raises(LedgerWriteError, match="board of device NPU-UUID-0"):
        second.unprepare(stuck)  # reported, and everything else of the claim is still removed
    assert not paths.claim_ledger(UUID0, stuck.uid).exists()
    assert second.store.get(stuck.uid) is None
    second.unprepare(stuck)  # the kubelet's retry: an unknown claim is unprepared


def test_unprepare_takes_a_claim_off_every_device_when_one_board_fails(
    tmp_path: Path, reader: MemoryReader
) -> None:
    preparer = _started(tmp_path, reader)
    both = reader.add(claim("both", results=[shared("npu-0", memory="2Gi", request="a"),
                                             shared("npu-1", memory="2Gi", cores="10")]))
    preparer.prepare(both)
    paths = node_paths(tmp_path)
    assert _entries(paths.board(UUID1)) == [(both.uid, 2 * GIB, 10)]
    _break_board(paths, UUID0)  # the first device in order
    with pytest.raises(LedgerWriteError, match="board of device NPU-UUID-0"):
        preparer.unprepare(both)
    assert _entries(paths.board(UUID1)) == []  # no slot or share left held on the other device
    assert not paths.claim_ledger(UUID0, both.uid).exists()
    assert not paths.claim_ledger(UUID1, both.uid).exists()


def test_a_board_of_another_layout_is_rebuilt_in_place_and_refilled_with_the_prepared_claims(
    tmp_path: Path, reader: MemoryReader
) -> None:
    """Running shims keep the board mapped: the rebuilt one is the same inode, so they see its entries.
    The refill is the plugin's records, live quota included, and nothing else."""
    first = _started(tmp_path, reader)
    tuned = reader.add(claim("tuned", results=[shared("npu-0", memory="8Gi", cores="30")]))
    plain = reader.add(claim("plain", results=[shared("npu-0", memory="4Gi", cores="20")]))
    for key in (tuned, plain):
        first.prepare(key)
    paths = node_paths(tmp_path)
    apply_quota(paths, tuned.uid, QuotaRequest(memory_bytes=6 * GIB, core_percent=15))
    board_file = paths.board(UUID0)
    inode = board_file.stat().st_ino
    with Board.read_only(board_file) as mapped:  # a running shim's mapping
        with Board.open(board_file, UUID0, 64 * GIB) as board:  # an entry the checkpoint does not know
            board.set("never-prepared", GIB, 5)
        with board_file.open("r+b") as raw:  # another layout: its magic
            raw.write(b"\0" * 8)
        _restarted(tmp_path, reader)
        assert board_file.stat().st_ino == inode
        assert sorted((e.key, e.limit_bytes, e.core_percent) for e in mapped.entries()) == sorted([
            (tuned.uid, 6 * GIB, 15), (plain.uid, 4 * GIB, 20),
        ])
        assert mapped.uuid == UUID0
        assert mapped.total_bytes == 64 * GIB


def test_a_live_quota_lands_on_the_board_and_is_shown_from_it_whatever_the_tenant_wrote(
    tmp_path: Path, reader: MemoryReader, capsys: pytest.CaptureFixture[str]
) -> None:
    preparer = _started(tmp_path, reader)
    key = reader.add(claim("tuned", results=[shared("npu-0", memory="8Gi", cores="30")]))
    preparer.prepare(key)
    paths = node_paths(tmp_path)
    ledger = paths.claim_ledger(UUID0, key.uid)
    with ClaimLedger.open(ledger, key.uid, UUID0) as own:  # its tenant raises its own copy of the limits
        slot = own.attach_process()
        assert own.reserve(slot, GIB, 64 * GIB)
        own.set_limits(64 * GIB, 100)

    (shown,) = show_quota(paths, key.uid)
    assert (shown.memory_bytes, shown.core_percent, shown.used_bytes) == (8 * GIB, 30, GIB)
    (changed,) = apply_quota(paths, key.uid, QuotaRequest(memory_bytes=4 * GIB, core_percent=10))
    assert (changed.memory_bytes, changed.core_percent) == (4 * GIB, 10)
    assert _entries(paths.board(UUID0)) == [(key.uid, 4 * GIB, 10)]
    # The plugin never wrote the ledger: the shims copy the board entry into it themselves.
    assert read_claim_usage(ledger).limit_bytes == 64 * GIB

    args = build_parser().parse_args(["quota", "--claim", key.uid, "--state-dir", str(paths.state_dir),
                                      "--run-dir", str(paths.run_dir), "--cores", "20"])
    assert args.handler(args) == 0  # `xpushare quota` on the node, as the CLI runs it
    assert _entries(paths.board(UUID0)) == [(key.uid, 4 * GIB, 20)]
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row == ["npu-0", str(4 * GIB), str(8 * GIB), str(GIB), "20%", "30%", "normal", "guaranteed"]

    ledger.write_bytes(b"\xa5" * 100)  # its tenant's ledger, damaged: the quota still lands on the board
    (changed,) = apply_quota(paths, key.uid, QuotaRequest(memory_bytes=2 * GIB))
    assert (changed.memory_bytes, changed.used_bytes) == (2 * GIB, 0)
    assert _entries(paths.board(UUID0)) == [(key.uid, 2 * GIB, 20)]


@pytest.fixture(params=[0o000, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_device_files_get_explicit_modes_whatever_the_umask(
    tmp_path: Path, reader: MemoryReader, umask: int
) -> None:
    """Containers of any user read the device's directory and the board and write their own ledger."""
    preparer = _started(tmp_path, reader)
    key = reader.add(claim("c", results=[shared("npu-0", memory="2Gi")]))
    preparer.prepare(key)
    paths = node_paths(tmp_path)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert {
        "devices": mode(paths.devices_dir),
        "device": mode(paths.device_dir(UUID0)),
        "claims": mode(paths.device_dir(UUID0) / "claims"),
        "board": mode(paths.board(UUID0)),
        "ledger": mode(paths.claim_ledger(UUID0, key.uid)),
    } == {"devices": 0o755, "device": 0o755, "claims": 0o755, "board": 0o644, "ledger": 0o666}


def test_files_of_the_old_shared_ledger_layout_are_left_alone(tmp_path: Path, reader: MemoryReader) -> None:
    old = node_paths(tmp_path).run_dir / "ledger" / UUID0
    old.parent.mkdir(parents=True)
    old.write_bytes(b"an old shared ledger")
    preparer = _restarted(tmp_path, reader)
    assert preparer.prepare(reader.add(claim("c", results=[shared("npu-0", memory="2Gi")])))
    assert old.read_bytes() == b"an old shared ledger"


def test_unsafe_names_never_reach_the_device_directories(tmp_path: Path) -> None:
    paths = node_paths(tmp_path)
    for uuid, uid in (("../x", "u"), (UUID0, "../../board"), (UUID0, "a/b")):
        with pytest.raises(ValueError, match="cannot be part of a file name"):
            paths.claim_ledger(uuid, uid)
    with pytest.raises(ValueError, match="device uuid"):
        paths.board("..")

