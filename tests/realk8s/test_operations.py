"""What an operator sees of a prepared claim, on a real cluster: the pod it was reserved for in
``xpushare status``, a Normal event on the claim with the limits its containers got, a Warning event when
its allocations are refused at the memory limit, and a live priority and policy from the claim's
``xpushare.io/quota`` annotation."""

from __future__ import annotations

from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin.claim_events import PREPARED_REASON
from kubeletplugin.plugin import Plugin
from kubeletplugin.refusal_events import REASON
from kubeletplugin.status import node_status
from shim.ledger import Board, ClaimLedger
from tests.realk8s.conftest import TestNode, create_pod, wait_for
from tests.realk8s.test_allocation import bound_claim, claim_ref, create_template

GIB = 1 << 30


def test_a_prepared_claims_pod_refusals_and_live_priority_reach_the_operator(
    node: TestNode, consumable_plugin: Plugin, kubelet: KubeletClient
) -> None:
    create_template(node, "gpu-20gi", "gpu.xpushare.io", "20Gi", "50")
    create_pod(node, "infer", "gpu-20gi")
    claim = bound_claim(node, "infer")
    uid, name = claim["metadata"]["uid"], claim["metadata"]["name"]
    assert kubelet.prepare([claim_ref(claim)], version="v1").claims[uid].error == ""
    paths = consumable_plugin.settings.paths

    (device,) = [d for d in node_status(paths, 0) if any(c.uid == uid for c in d.claims)]
    (row,) = [c for c in device.claims if c.uid == uid]
    assert row.pods == ("infer",)  # the claim's reservedFor, written by the real scheduler

    def prepared() -> list[object]:
        events = node.cluster.core.list_namespaced_event(node.namespace).items
        return [e for e in events if e.reason == PREPARED_REASON and e.involved_object.name == name]

    wait_for("the claim's Prepared event", lambda: bool(prepared()), timeout_s=10)
    (announced,) = prepared()
    assert "20Gi, 50 % of its compute" in announced.message  # type: ignore[attr-defined]

    with ClaimLedger.open(paths.claim_ledger(device.uuid, uid), uid, device.uuid) as ledger:
        ledger.head_pointer().claim.refused_allocs += 2  # as the claim's shims count refusals
        ledger.head_pointer().claim.refused_bytes += 24 * GIB
    reporter = consumable_plugin.refusal_events
    assert reporter is not None
    assert reporter.check() == 1
    events = node.cluster.core.list_namespaced_event(node.namespace).items
    (event,) = [e for e in events if e.reason == REASON and e.involved_object.name == name]
    assert event.type == "Warning"
    assert f"limit of {20 * GIB} bytes ({24 * GIB} bytes asked" in event.message

    patch = {"metadata": {"annotations": {"xpushare.io/quota": "priority=low,policy=fixed"}}}
    node.cluster.resource.patch_namespaced_resource_claim(name, node.namespace, patch)

    def entry() -> tuple[str, str] | None:
        with Board.read_only(paths.board(device.uuid)) as board:
            found = board.entry(uid)
        return (str(found.priority), str(found.policy)) if found else None

    wait_for("the annotation's priority on the board", lambda: entry() == ("low", "fixed"), timeout_s=10)
