"""The node plugin's metrics: error reasons, the prepare histogram recorded by the DRA service, and the
scrape-time collector joining the checkpoint (live quota included) with the claims' ledgers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from api.errors import ConfigError, XPUShareError
from dra_driver.core.devices import GIB
from dra_driver.core.kube import ApiError
from dra_driver.core.metrics import Registry
from dra_driver.core.vendors.ascend.profile import CONTROL_NODES as ASCEND_CONTROL_NODES
from kubeletplugin import cdi
from kubeletplugin.accounting import OvercommitError
from kubeletplugin.checkpoint import CheckpointLockTimeoutError
from kubeletplugin.checkpoint_store import CheckpointStore
from kubeletplugin.claims import ClaimError
from kubeletplugin.ledgers import Ledgers
from kubeletplugin.limits import Catalog
from kubeletplugin.metrics import NodeCollector, NodeMetrics, error_reason
from kubeletplugin.paths import NodePaths
from kubeletplugin.quota import QuotaRequest, apply_quota
from kubeletplugin.server import DraService
from kubeletplugin.state import ClaimKey, ClaimPreparer
from kubeletplugin.usage_history import Point
from shim import library_path
from shim.ledger import ClaimLedger
from shim.limits import read_limits_file
from tests.support.plugin_claims import NODE, claim, npu, shared
from tests.support.plugin_preparer import LEDGER_DAMAGE, damage_ledger
from tests.support.prometheus import Exposition, parse


class Reader:
    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, obj: dict[str, Any]) -> ClaimKey:
        meta = obj["metadata"]
        self.claims[(meta["namespace"], meta["name"])] = obj
        return ClaimKey(meta["namespace"], meta["name"], meta["uid"])

    def get_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.claims.get((namespace, name))

    def list_claims(self) -> list[dict[str, Any]]:
        return list(self.claims.values())

    def node_event(self, node_name: str, reason: str, message: str, warning: bool = True) -> None:
        return None


def _preparer(tmp_path: Path, ledgers: bool) -> ClaimPreparer:
    store = CheckpointStore(tmp_path / "state/checkpoint", "boot-1")
    store.load()
    totals = {"NPU-UUID-0": 64 * GIB, "NPU-UUID-1": 64 * GIB}
    paths = NodePaths(state_dir=tmp_path / "state", run_dir=tmp_path, cdi_dir=tmp_path / "cdi")
    (tmp_path / "host/dev").mkdir(parents=True, exist_ok=True)
    for node in ASCEND_CONTROL_NODES:  # the host's control nodes, as on an Ascend node
        (tmp_path / "host" / node.lstrip("/")).touch()
    return ClaimPreparer(
        driver="xpushare.io",
        pool=NODE,
        reader=Reader(),
        catalog=Catalog([npu(0), npu(1)]),
        store=store,
        layout=cdi.HostLayout(tmp_path / "host", tmp_path / "host", None, paths.devices_dir),
        paths=paths,
        ledgers=Ledgers(paths, totals, enabled=ledgers),
    )


def _scrape(preparer: ClaimPreparer) -> Exposition:
    registry = Registry()
    registry.register(NodeCollector(preparer))
    return parse(registry.render())


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OvercommitError("npu-0 full"), "overcommit"),
        (ClaimError("not found"), "invalid_claim"),
        (CheckpointLockTimeoutError("locked"), "checkpoint_lock"),
        (ApiError("503"), "api"),
        (ConfigError("bad"), "config"),
        (XPUShareError("other"), "other"),
        (KeyError("bug"), "internal"),
    ],
)
def test_errors_get_a_bounded_reason(error: BaseException, reason: str) -> None:
    assert error_reason(error) == reason


def test_dra_service_times_every_claim_and_counts_refusals_by_reason(tmp_path: Path) -> None:
    preparer = _preparer(tmp_path, ledgers=False)
    assert isinstance(preparer.reader, Reader)
    good = preparer.reader.add(claim("good", results=[shared("npu-0", memory="8Gi")]))
    missing = ClaimKey("default", "missing", "uid-missing")
    metrics = NodeMetrics(Registry())
    service = DraService(preparer, metrics=metrics)
    try:
        outcomes = service.prepare([good, missing])
        service.unprepare([good])
    finally:
        service.close()
    assert "not found" in str(outcomes["uid-missing"])
    assert metrics.seconds.count(operation="prepare", outcome="ok") == 1
    assert metrics.seconds.count(operation="prepare", outcome="error") == 1
    assert metrics.seconds.count(operation="unprepare", outcome="ok") == 1
    assert metrics.errors.value(operation="prepare", reason="invalid_claim") == 1
    assert metrics.in_flight.value(operation="prepare") == 0


def test_without_ledgers_limits_and_shares_come_from_the_checkpoint(tmp_path: Path) -> None:
    preparer = _preparer(tmp_path, ledgers=False)
    assert isinstance(preparer.reader, Reader)
    key = preparer.reader.add(claim("train", results=[shared("npu-1", memory="8Gi", cores="30")]))
    preparer.prepare(key)
    exposition = _scrape(preparer)
    labels = {"claim_uid": key.uid, "namespace": "default", "name": "train", "device": "npu-1"}
    assert exposition.value("xpushare_claim_memory_limit_bytes", **labels) == 8 * GIB
    assert exposition.value("xpushare_claim_core_share_percent", **labels) == 30
    assert exposition.find("xpushare_claim_memory_used_bytes") == []
    assert exposition.find("xpushare_device_memory_used_bytes") == []
    npu_1 = {"device": "npu-1", "uuid": "NPU-UUID-1"}
    assert exposition.value("xpushare_device_memory_allocated_bytes", **npu_1) == 8 * GIB
    assert exposition.value("xpushare_prepared_claims") == 1
    preparer.unprepare(key)
    after = _scrape(preparer)
    assert after.value("xpushare_prepared_claims") == 0
    assert after.find("xpushare_claim_memory_limit_bytes") == []


def test_the_share_each_claim_got_over_the_last_10_s_and_60_s_comes_from_the_usage_history(
    tmp_path: Path,
) -> None:
    """What ``kubectl xpushare status`` shows from one scrape: no second read, no waiting."""
    preparer = _preparer(tmp_path, ledgers=False)
    assert isinstance(preparer.reader, Reader)
    busy = preparer.reader.add(claim("busy", results=[shared("npu-1", memory="8Gi", cores="30")]))
    new = preparer.reader.add(claim("new", results=[shared("npu-0", memory="8Gi", cores="30")]))
    preparer.prepare(busy)
    preparer.prepare(new)
    sec = 1_000_000_000
    history = {(busy.uid, "NPU-UUID-1"): (Point(0, 0, 0), Point(50 * sec, 5 * sec, 0),
                                          Point(60 * sec, 8 * sec, 2 * sec)),
               (new.uid, "NPU-UUID-0"): (Point(60 * sec, 0, 0),)}  # one sample: no share yet
    registry = Registry()
    registry.register(NodeCollector(preparer, recent=lambda: history))
    exposition = parse(registry.render())
    labels = {"claim_uid": busy.uid, "namespace": "default", "name": "busy", "device": "npu-1"}
    measured = "xpushare_claim_compute_recent_percent"
    assert exposition.value(measured, **labels, window="10s") == 30.0
    assert exposition.value("xpushare_claim_throttled_recent_percent", **labels, window="10s") == 20.0
    assert exposition.value(measured, **labels, window="60s") == pytest.approx(13.3)
    assert [s.labels["name"] for s in exposition.find(measured)] == ["busy", "busy"]
    assert exposition.types[measured] == "gauge"


def test_a_quota_change_and_the_claims_usage_show_at_the_next_scrape(tmp_path: Path) -> None:
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no device ledgers")
    preparer = _preparer(tmp_path, ledgers=True)
    assert isinstance(preparer.reader, Reader)
    key = preparer.reader.add(claim("tuned", results=[shared("npu-0", memory="16Gi", cores="50")]))
    preparer.prepare(key)
    labels = {"claim_uid": key.uid, "namespace": "default", "name": "tuned", "device": "npu-0"}
    assert _scrape(preparer).value("xpushare_claim_memory_limit_bytes", **labels) == 16 * GIB
    apply_quota(preparer.paths, key.uid, QuotaRequest(memory_bytes=4 * GIB, core_percent=20))
    with ClaimLedger.open(preparer.paths.claim_ledger("NPU-UUID-0", key.uid)) as ledger:  # as its shim does
        proc = ledger.attach_process()
        assert ledger.reserve(proc, GIB, 4 * GIB)
        ledger.set_limits(64 * GIB, 100)  # its tenant's own numbers never raise what the plugin reports
        exposition = _scrape(preparer)
    assert exposition.value("xpushare_claim_memory_limit_bytes", **labels) == 4 * GIB
    assert exposition.value("xpushare_claim_core_share_percent", **labels) == 20
    assert exposition.value("xpushare_claim_memory_used_bytes", **labels) == GIB
    assert exposition.value("xpushare_claim_processes", **labels) == 1
    assert exposition.value("xpushare_claim_memory_refusals_total", **labels) == 0
    assert exposition.value("xpushare_device_memory_used_bytes", device="npu-0", uuid="NPU-UUID-0") == GIB


@pytest.mark.parametrize("how", LEDGER_DAMAGE)
def test_a_damaged_claim_ledger_costs_only_its_usage_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no device ledgers")
    preparer = _preparer(tmp_path, ledgers=True)
    assert isinstance(preparer.reader, Reader)
    key = preparer.reader.add(claim("hurt", results=[shared("npu-0", memory="16Gi", cores="50")]))
    neighbour = preparer.reader.add(claim("fine", results=[shared("npu-0", memory="16Gi", cores="20")]))
    preparer.prepare(key)
    preparer.prepare(neighbour)
    with ClaimLedger.open(preparer.paths.claim_ledger("NPU-UUID-0", neighbour.uid)) as ledger:
        assert ledger.reserve(ledger.attach_process(), 3 * GIB, 16 * GIB)
    damage_ledger(preparer.paths.claim_ledger("NPU-UUID-0", key.uid), how)
    with caplog.at_level(logging.DEBUG, logger="kubeletplugin.ledgers"):
        exposition = _scrape(preparer)
        _scrape(preparer)  # scraped again: the same damage is not warned about again
    labels = {"claim_uid": key.uid, "namespace": "default", "name": "hurt", "device": "npu-0"}
    assert exposition.value("xpushare_claim_memory_limit_bytes", **labels) == 16 * GIB
    assert exposition.value("xpushare_claim_core_share_percent", **labels) == 50
    assert [s.labels["name"] for s in exposition.find("xpushare_claim_memory_used_bytes")] == ["fine"]
    npu_0 = {"device": "npu-0", "uuid": "NPU-UUID-0"}
    assert exposition.value("xpushare_device_memory_used_bytes", **npu_0) == 3 * GIB  # the readable claims
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.getMessage(), getattr(r, "claim_uid", "")) for r in warnings] == [
        ("claim ledger unreadable", key.uid)
    ]
    preparer.unprepare(key)  # and the claim still goes
    assert preparer.store.get(key.uid) is None


def test_a_ledger_removed_by_an_unprepare_during_a_read_is_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A scrape or the usage sampler lists the prepared claims, then reads each ledger: an unprepare in
    between removes the file. That is no damage to warn about, and nothing is remembered of it."""
    if not library_path().is_file():
        pytest.skip(f"shim library not built at {library_path()}: no device ledgers")
    preparer = _preparer(tmp_path, ledgers=True)
    assert isinstance(preparer.reader, Reader)
    key = preparer.reader.add(claim("leaving", results=[shared("npu-0", memory="16Gi", cores="50")]))
    preparer.prepare(key)
    preparer.paths.claim_ledger("NPU-UUID-0", key.uid).unlink()  # as _forget does, mid-read
    with caplog.at_level(logging.DEBUG, logger="kubeletplugin.ledgers"):
        exposition = _scrape(preparer)
    assert exposition.find("xpushare_claim_memory_used_bytes") == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "claim ledger gone" in caplog.text


def test_without_ledgers_neither_the_limits_file_nor_the_spec_names_them(tmp_path: Path) -> None:
    """No shim library, no boards or ledgers: a mount of a ledger that does not exist would stop the
    container from starting, so the spec mounts none and each process limits itself alone."""
    preparer = _preparer(tmp_path, ledgers=False)
    assert isinstance(preparer.reader, Reader)
    key = preparer.reader.add(claim("plain", results=[shared("npu-0", memory="8Gi")]))
    preparer.prepare(key)
    (line,) = read_limits_file(preparer.paths.limits_file(key.uid)).devices
    assert (line.ledger_path, line.board_path) == ("", "")
    spec = json.loads(cdi.spec_path(preparer.paths.cdi_dir, key.uid).read_text())
    paths = [m["containerPath"] for m in spec["containerEdits"]["mounts"]]
    assert not [p for p in paths if p.startswith(("/var/run/xpushare/devices", "/var/run/xpushare/claims"))]
    assert not preparer.paths.devices_dir.exists()


def test_device_health_is_one_sample_per_state_with_the_current_one_set(tmp_path: Path) -> None:
    from dra_driver.core.devices import Health

    devices = [npu(0), npu(1).with_health(Health.UNHEALTHY, "ECC errors")]
    registry = Registry()
    registry.register(NodeCollector(_preparer(tmp_path, ledgers=False), health=lambda: devices))
    exposition = parse(registry.render())
    assert exposition.types["xpushare_device_health"] == "gauge"
    found = exposition.find("xpushare_device_health")
    states = {(s.labels["device"], s.labels["state"]): s.value for s in found}
    assert states[("npu-1", "Unhealthy")] == 1
    assert states[("npu-1", "Healthy")] == 0
    assert sum(v for (device, _), v in states.items() if device == "npu-0") == 1
    without_monitor = _scrape(_preparer(tmp_path / "b", ledgers=False))
    assert "xpushare_device_health" not in without_monitor.types
