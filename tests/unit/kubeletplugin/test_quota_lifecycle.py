"""A live quota outlives re-prepares and restarts and ends with the claim; a claim's parts on one physical
device are one limit; a device holds at most 64 claims, refused with a message that says what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.v1alpha1.sharing import ComputePolicy, Priority
from controller.settings import MAX_CLAIMS_PER_DEVICE
from dra_driver.core.devices import GIB, MIB
from kubeletplugin import cdi, limitsfile
from kubeletplugin.accounting import ClaimLimitError
from kubeletplugin.ledgers import LedgerFullError, Ledgers
from kubeletplugin.paths import NodePaths, record_path
from kubeletplugin.physical import claim_limits
from kubeletplugin.quota import QuotaRequest, apply_quota, load_quota, read_prepared, show_quota
from kubeletplugin.recovery import recover
from kubeletplugin.state import ClaimKey, ClaimPreparer
from shim import HEADER_PATH
from shim.ledger import Board
from shim.limits import read_limits_file
from tests.support.plugin_claims import NODE, claim, result, shared
from tests.support.plugin_preparer import MemoryReader, node_paths, node_preparer

UUID0 = "NPU-UUID-0"


def _preparer(tmp_path: Path, reader: MemoryReader) -> ClaimPreparer:
    return node_preparer(tmp_path, reader)


def _ledger_record(tmp_path: Path, uid: str, uuid: str = UUID0) -> tuple[int, int]:
    """The claim's entry on the device's board: what its running shims take."""
    with Board.read_only(node_paths(tmp_path).board(uuid)) as board:
        entry = board.entry(uid)
    assert entry is not None
    return entry.limit_bytes, entry.core_percent


def _file_limits(tmp_path: Path, uid: str) -> list[tuple[int, int, int | None, int | None]]:
    limits = read_limits_file(node_paths(tmp_path).limits_file(uid))
    return [
        (d.memory_limit_bytes, d.core_percent, d.memory_max_bytes, d.core_max_percent) for d in limits.devices
    ]


@pytest.fixture
def reader() -> MemoryReader:
    return MemoryReader()


def _tuned(tmp_path: Path, reader: MemoryReader) -> tuple[ClaimPreparer, ClaimKey]:
    preparer = _preparer(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0", memory="8Gi", cores="30")]))
    preparer.prepare(key)
    apply_quota(node_paths(tmp_path), key.uid, QuotaRequest(memory_bytes=4 * GIB, core_percent=10))
    assert _ledger_record(tmp_path, key.uid) == (4 * GIB, 10)
    return preparer, key


def test_quota_survives_a_re_prepare(tmp_path: Path, reader: MemoryReader) -> None:
    preparer, key = _tuned(tmp_path, reader)
    cdi.spec_path(tmp_path / "cdi", key.uid).unlink()  # the kubelet's retry finds the files gone
    preparer.prepare(key)
    assert _ledger_record(tmp_path, key.uid) == (4 * GIB, 10)
    assert _file_limits(tmp_path, key.uid) == [(4 * GIB, 10, 8 * GIB, 30)]


def test_quota_survives_a_plugin_restart(tmp_path: Path, reader: MemoryReader) -> None:
    _tuned(tmp_path, reader)
    uid = next(iter(reader.claims.values()))["metadata"]["uid"]
    with Board.open(node_paths(tmp_path).board(UUID0), UUID0) as board:  # as after a reboot: board emptied
        board.remove(uid)
    limitsfile.remove_limits(node_paths(tmp_path).run_dir / "limits", uid)
    assert recover(_preparer(tmp_path, reader), NODE).restored == [uid]
    assert _ledger_record(tmp_path, uid) == (4 * GIB, 10)
    assert _file_limits(tmp_path, uid) == [(4 * GIB, 10, 8 * GIB, 30)]


def test_unprepare_forgets_the_quota(tmp_path: Path, reader: MemoryReader) -> None:
    preparer, key = _tuned(tmp_path, reader)
    preparer.unprepare(key)
    assert load_quota(node_paths(tmp_path), key.uid) == {}
    assert not node_paths(tmp_path).quota_record(key.uid).exists()
    preparer.prepare(key)  # prepared again: the whole allocation
    assert _ledger_record(tmp_path, key.uid) == (8 * GIB, 30)
    assert _file_limits(tmp_path, key.uid) == [(8 * GIB, 30, None, None)]


def test_quota_reads_the_record_the_checkpoint_store_writes(tmp_path: Path, reader: MemoryReader) -> None:
    preparer = _preparer(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0")]))
    preparer.prepare(key)
    assert record_path(preparer.store.path, key.uid) == preparer.store.record_path(key.uid)
    assert read_prepared(node_paths(tmp_path), key.uid).devices == preparer.store.get(key.uid).devices  # type: ignore[union-attr]


def test_two_partitions_of_one_device_are_one_summed_limit(tmp_path: Path, reader: MemoryReader) -> None:
    preparer = _preparer(tmp_path, reader)
    key = reader.add(claim(results=[result("npu-0-1of4-0"), result("npu-0-1of4-1", request="b")]))
    devices = preparer.prepare(key)
    assert [(d.device, d.memory_bytes, d.core_percent) for d in devices] == [
        ("npu-0-1of4-0", 16 * GIB, 25),
        ("npu-0-1of4-1", 16 * GIB, 25),
    ]
    assert _ledger_record(tmp_path, key.uid) == (32 * GIB, 50)
    assert _file_limits(tmp_path, key.uid) == [(32 * GIB, 50, None, None)]  # one line: one device seen
    (quota,) = apply_quota(node_paths(tmp_path), key.uid, QuotaRequest(memory_bytes=20 * GIB))
    assert (quota.device, quota.memory_bytes, quota.allocated_memory_bytes) == (
        "npu-0-1of4-0+npu-0-1of4-1", 20 * GIB, 32 * GIB
    )
    assert [q.memory_bytes for q in show_quota(node_paths(tmp_path), key.uid)] == [20 * GIB]
    assert _file_limits(tmp_path, key.uid) == [(20 * GIB, 50, 32 * GIB, 50)]


def test_two_shares_of_one_device_are_summed_in_the_ledger(tmp_path: Path, reader: MemoryReader) -> None:
    preparer = _preparer(tmp_path, reader)
    parts = [shared("npu-0", memory="4Gi", cores="10", request="a"), shared("npu-0", memory="6Gi", cores="5")]
    key = reader.add(claim(results=parts))
    preparer.prepare(key)
    assert _ledger_record(tmp_path, key.uid) == (10 * GIB, 15)


def test_the_claim_limit_is_the_shims(tmp_path: Path) -> None:
    header = HEADER_PATH.read_text()
    match = re.search(r"#define XPUSHARE_MAX_CLAIMS (\d+)", header)
    assert match is not None
    assert int(match.group(1)) == MAX_CLAIMS_PER_DEVICE


def test_a_device_refuses_its_65th_claim_clearly(tmp_path: Path, reader: MemoryReader) -> None:
    preparer = _preparer(tmp_path, reader)
    for n in range(MAX_CLAIMS_PER_DEVICE):
        small = [shared("npu-0", memory="512Mi", cores="0")]
        preparer.prepare(reader.add(claim(name=f"c{n}", results=small)))
    extra = reader.add(claim(name="extra", results=[shared("npu-0", memory="512Mi", cores="0")]))
    with pytest.raises(ClaimLimitError) as caught:
        preparer.prepare(extra)
    message = str(caught.value)
    for part in ("claim default/extra", "device npu-0", "64 prepared claims", "1/64 of the device"):
        assert part in message, message
    assert preparer.store.get(extra.uid) is None
    assert preparer.prepare(reader.add(claim(name="other", results=[shared("npu-1", memory="1Gi")])))


def test_a_full_board_is_reported_as_such(tmp_path: Path, reader: MemoryReader) -> None:
    """The board's own refusal (entries left by others) names the device and the limit too."""
    paths = NodePaths(tmp_path / "other-state", tmp_path / "other-run")
    ledgers = Ledgers(paths, {UUID0: 64 * GIB})
    paths.device_dir(UUID0).mkdir(parents=True)
    with Board.open(paths.board(UUID0), UUID0, 64 * GIB) as board:
        for n in range(MAX_CLAIMS_PER_DEVICE):
            board.set(f"other-{n}", 256 * MIB, 0)
    preparer = _preparer(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0")]))
    devices = preparer.prepare(key)  # the devices as prepare makes them (its own run directory)
    with pytest.raises(LedgerFullError, match=r"device npu-0 \(NPU-UUID-0\) already holds 64 claims.*64"):
        ledgers.register(key.uid, claim_limits(devices))


def test_a_live_priority_and_policy_reach_the_board_the_limits_file_and_survive_a_re_prepare(
    tmp_path: Path, reader: MemoryReader
) -> None:
    preparer = _preparer(tmp_path, reader)
    key = reader.add(claim(results=[shared("npu-0", memory="8Gi", cores="30")]))
    preparer.prepare(key)
    paths = node_paths(tmp_path)
    (quota,) = apply_quota(paths, key.uid, QuotaRequest(priority=Priority.LOW, policy=ComputePolicy.FIXED))
    assert (quota.priority, quota.policy, quota.core_percent) == (Priority.LOW, ComputePolicy.FIXED, 30)

    def written() -> list[tuple[str, str]]:
        with Board.read_only(paths.board(UUID0)) as board:
            entry = board.entry(key.uid)
        assert entry is not None
        (device,) = read_limits_file(paths.limits_file(key.uid)).devices
        return [(entry.priority, entry.policy), (device.priority, device.policy)]

    assert written() == [("low", "fixed")] * 2
    cdi.spec_path(tmp_path / "cdi", key.uid).unlink()  # the kubelet's retry rewrites the claim's files
    preparer.prepare(key)
    assert written() == [("low", "fixed")] * 2
    apply_quota(paths, key.uid, QuotaRequest(priority=Priority.NORMAL, policy=ComputePolicy.GUARANTEED))
    assert written() == [("normal", "guaranteed")] * 2
    assert [(q.priority, q.policy) for q in show_quota(paths, key.uid)] == [
        (Priority.NORMAL, ComputePolicy.GUARANTEED)]
