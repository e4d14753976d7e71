"""The ``xpushare.io/quota`` annotation on a prepared claim reaches its board entry and limits file within
2 s, through the plugin's watch on the embedded API server; a bad value gets an Event and changes nothing.
Allocations its shims refuse at the memory limit become a Warning event on the claim."""

from __future__ import annotations

import time

from kubernetes import client

from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.plugin import Plugin
from shim.ledger import Board, ClaimLedger
from shim.limits import read_limits_file
from tests.integration.kubeletplugin.conftest import NS, Allocate, claim_events, ref, within

GIB = 1 << 30


def _prepared(plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, name: str) -> tuple[str, str]:
    obj = allocate(name, memory="16Gi", cores="25")
    uid = obj["metadata"]["uid"]
    assert kubelet.prepare([ref(obj)]).claims[uid].error == ""
    assert plugin.preparer is not None
    recorded = plugin.preparer.store.get(uid)
    assert recorded is not None
    return uid, recorded.devices[0].uuid


def _state(plugin: Plugin, uid: str, uuid: str) -> tuple[tuple[int, int], tuple[int, int]]:
    with Board.read_only(plugin.settings.paths.board(uuid)) as board:  # what the claim's shims take
        record = board.entry(uid)
    assert record is not None
    (line,) = read_limits_file(plugin.settings.paths.limits_file(uid)).devices
    return (record.limit_bytes, record.core_percent), (line.memory_limit_bytes, line.core_percent)


def _annotate(kube_client: client.ApiClient, name: str, value: str | None) -> None:
    body = {"metadata": {"annotations": {"xpushare.io/quota": value}}}
    client.ResourceV1Api(kube_client).patch_namespaced_resource_claim(name, NS, body)


def test_an_annotation_changes_the_running_claims_quota_within_two_seconds(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, kube_client: client.ApiClient
) -> None:
    uid, uuid = _prepared(plugin, kubelet, allocate, "tuned")
    assert _state(plugin, uid, uuid) == ((16 * GIB, 25), (16 * GIB, 25))
    started = time.monotonic()
    _annotate(kube_client, "tuned", "memory=8Gi,cores=10")
    wanted = ((8 * GIB, 10), (8 * GIB, 10))
    assert within(2.0, lambda: _state(plugin, uid, uuid) == wanted), _state(plugin, uid, uuid)
    assert time.monotonic() - started < 2.0
    assert within(2.0, lambda: claim_events(kube_client, "tuned", "QuotaApplied"))

    _annotate(kube_client, "tuned", None)  # removed: the whole allocation again
    assert within(2.0, lambda: _state(plugin, uid, uuid) == ((16 * GIB, 25), (16 * GIB, 25)))


def test_a_bad_annotation_gets_an_event_and_changes_nothing(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, kube_client: client.ApiClient
) -> None:
    uid, uuid = _prepared(plugin, kubelet, allocate, "greedy")
    _annotate(kube_client, "greedy", "memory=32Gi")  # more than the 16Gi allocated
    events = within(2.0, lambda: claim_events(kube_client, "greedy", "InvalidQuota"))
    assert events, "no InvalidQuota event"
    assert "memory: 34359738368 bytes" in events[0].message
    assert "allocated range 1..17179869184 bytes" in events[0].message
    assert events[0].type == "Warning"
    _annotate(kube_client, "greedy", "cores=lots")
    assert within(2.0, lambda: any("cores 'lots' must be an integer in [0, 100]" in e.message
                                    for e in claim_events(kube_client, "greedy", "InvalidQuota")))
    assert _state(plugin, uid, uuid) == ((16 * GIB, 25), (16 * GIB, 25))
    assert plugin.quota_watcher is not None
    assert plugin.quota_watcher._thread is not None
    assert plugin.quota_watcher._thread.is_alive()  # bad values never end the watch


def test_a_claim_annotated_before_prepare_starts_with_its_quota(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, kube_client: client.ApiClient
) -> None:
    obj = allocate("early", memory="16Gi", cores="25")
    _annotate(kube_client, "early", "memory=4Gi")
    time.sleep(0.3)  # the watch has seen it, before the claim is prepared
    uid = obj["metadata"]["uid"]
    assert kubelet.prepare([ref(obj)]).claims[uid].error == ""
    assert plugin.preparer is not None
    recorded = plugin.preparer.store.get(uid)
    assert recorded is not None
    assert _state(plugin, uid, recorded.devices[0].uuid) == ((4 * GIB, 25), (4 * GIB, 25))


def test_a_priority_and_policy_annotation_reaches_the_board(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, kube_client: client.ApiClient
) -> None:
    uid, uuid = _prepared(plugin, kubelet, allocate, "background")

    def entry() -> tuple[str, str]:
        with Board.read_only(plugin.settings.paths.board(uuid)) as board:
            record = board.entry(uid)
        assert record is not None
        return str(record.priority), str(record.policy)

    assert entry() == ("normal", "guaranteed")
    _annotate(kube_client, "background", "priority=low,policy=fixed")
    assert within(2.0, lambda: entry() == ("low", "fixed")), entry()
    _annotate(kube_client, "background", "priority=high")  # above the allocated normal: refused
    assert within(2.0, lambda: claim_events(kube_client, "background", "InvalidQuota"))
    assert entry() == ("low", "fixed")


def test_allocations_refused_at_the_limit_become_a_warning_on_the_claim(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, kube_client: client.ApiClient
) -> None:
    uid, uuid = _prepared(plugin, kubelet, allocate, "oom")
    reporter = plugin.refusal_events
    assert reporter is not None  # started with the plugin
    with ClaimLedger.open(plugin.settings.paths.claim_ledger(uuid, uid), uid, uuid) as ledger:
        ledger.head_pointer().claim.refused_allocs += 3  # as the claim's shims count refusals
        ledger.head_pointer().claim.refused_bytes += 3 * GIB
    assert reporter.check() == 1  # what its timer does every 10 s
    (event,) = claim_events(kube_client, "oom", "MemoryLimitReached")
    assert event.type == "Warning"
    assert event.message.startswith("3 device memory allocation(s) on ")
    assert f"limit of {16 * GIB} bytes ({3 * GIB} bytes asked" in event.message
