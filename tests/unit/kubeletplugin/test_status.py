"""``xpushare status``: the node's devices and each claim's use, from the checkpoint, the quota records and
the claims' ledgers (real files, as the plugin leaves them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dra_driver.cli import main
from dra_driver.core.devices import GIB
from kubeletplugin.quota import QuotaRequest, apply_quota
from kubeletplugin.state import ClaimKey, ClaimPreparer
from kubeletplugin.status import node_status, render_table
from shim import library_path
from shim.ledger import ClaimLedger
from tests.support.plugin_claims import claim, shared
from tests.support.plugin_preparer import MemoryReader, node_preparer

SECOND = 1_000_000_000


@pytest.fixture
def node(tmp_path: Path) -> tuple[ClaimPreparer, MemoryReader]:
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no claim ledgers")
    reader = MemoryReader()
    preparer = node_preparer(tmp_path, reader)
    return preparer, reader


def _busy(preparer: ClaimPreparer, key: ClaimKey, uuid: str, held: int) -> ClaimLedger:
    """A process of the claim holding ``held`` bytes, as its shim would be."""
    ledger = ClaimLedger.open(preparer.paths.claim_ledger(uuid, key.uid))
    proc = ledger.attach_process()
    assert ledger.reserve(proc, held, 0)
    return ledger


def test_status_shows_each_claims_use_and_the_share_it_got_over_the_window(
    node: tuple[ClaimPreparer, MemoryReader],
) -> None:
    preparer, reader = node
    a = reader.add(claim("train", results=[shared("npu-0", memory="16Gi", cores="30")]))
    b = reader.add(claim("serve", results=[shared("npu-0", memory="8Gi", cores="70")]))
    c = reader.add(claim("idle", results=[shared("npu-1", memory="4Gi", cores="10")]))
    for key in (a, b, c):
        preparer.prepare(key)
    apply_quota(preparer.paths, b.uid, QuotaRequest(core_percent=50))  # a live quota shows
    train, serve = _busy(preparer, a, "NPU-UUID-0", 3 * GIB), _busy(preparer, b, "NPU-UUID-0", GIB)

    def meanwhile(seconds: float) -> None:  # what their shims charge during the window
        train.charge(0, int(0.3 * seconds * SECOND))
        serve.charge(0, int(0.5 * seconds * SECOND))
        serve.reserve(0, GIB, 0)

    clock = iter([100.0, 102.0])
    devices = node_status(preparer.paths, 2.0, sleep=meanwhile, clock=lambda: next(clock))
    by_name = {s.name: s for d in devices for s in d.claims}
    assert [d.uuid for d in devices] == ["NPU-UUID-0", "NPU-UUID-1"]
    assert (by_name["train"].memory_used_bytes, by_name["train"].memory_limit_bytes) == (3 * GIB, 16 * GIB)
    assert (by_name["train"].core_percent, by_name["train"].measured_percent) == (30, 30.0)
    assert (by_name["serve"].core_percent, by_name["serve"].measured_percent) == (50, 50.0)
    assert (by_name["serve"].memory_used_bytes, by_name["serve"].memory_peak_bytes) == (2 * GIB, 2 * GIB)
    assert by_name["serve"].processes == 1
    assert (by_name["idle"].memory_used_bytes, by_name["idle"].measured_percent) == (0, 0.0)
    assert devices[0].memory_used_bytes == 3 * GIB + 2 * GIB
    table = render_table(devices)
    assert "NPU-UUID-0: 2 claims, 5120Mi used of 24576Mi allocated, 80% of cores allocated" in table
    assert "default/serve" in table
    assert "50.0%" in table
    assert by_name["train"].pods == ("train-pod",)  # its reservedFor when prepared
    assert table.splitlines()[1].split()[-1] == "PODS"
    assert any(line.split()[-1] == "train-pod" for line in table.splitlines())
    train.close()
    serve.close()


def test_a_ledger_that_cannot_be_read_is_a_row_of_dashes(node: tuple[ClaimPreparer, MemoryReader]) -> None:
    preparer, reader = node
    key = reader.add(claim("hurt", results=[shared("npu-0", memory="2Gi", cores="20")]))
    preparer.prepare(key)
    preparer.paths.claim_ledger("NPU-UUID-0", key.uid).write_bytes(b"garbage")  # its tenant's doing
    (device,) = node_status(preparer.paths, 0)
    (row,) = device.claims
    assert (row.memory_limit_bytes, row.core_percent) == (2 * GIB, 20)  # the plugin's records
    assert (row.memory_used_bytes, row.processes, row.measured_percent) == (None, None, None)
    assert "default/hurt" in render_table([device])


def test_the_command_prints_json_from_the_nodes_files(
    node: tuple[ClaimPreparer, MemoryReader], capsys: pytest.CaptureFixture[str]
) -> None:
    preparer, reader = node
    key = reader.add(claim("json", results=[shared("npu-1", memory="4Gi", cores="25")]))
    preparer.prepare(key)
    paths = preparer.paths
    code = main(["status", "--window", "0", "-o", "json", "--state-dir", str(paths.state_dir),
                 "--run-dir", str(paths.run_dir)])
    assert code == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    (device,) = body["devices"]
    assert device["uuid"] == "NPU-UUID-1"
    (row,) = device["claims"]
    assert (row["name"], row["memoryLimitBytes"], row["corePercent"], row["memoryUsedBytes"]) == (
        "json", 4 * GIB, 25, 0)
    assert row["pods"] == ["json-pod"]
    assert main(["status", "--window", "-1", "--state-dir", str(paths.state_dir)]) == 1
