"""Events on claims through the running plugin and the embedded API server: a prepared claim says what its
containers get, and a claim that cannot be prepared says why, once however often the kubelet retries."""

from __future__ import annotations

import time

from kubernetes import client

from dra_driver.simulation.kubelet import ClaimRef, KubeletClient
from kubeletplugin.plugin import Plugin
from tests.integration.kubeletplugin.conftest import NS, Allocate, claim_events, ref, within

GIB = 1 << 30


def test_a_prepared_claim_gets_a_normal_event_with_its_limits(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, kube_client: client.ApiClient
) -> None:
    obj = allocate("served", memory="16Gi", cores="25")
    assert kubelet.prepare([ref(obj)]).claims[obj["metadata"]["uid"]].error == ""
    (event,) = within(2.0, lambda: claim_events(kube_client, "served", "Prepared"))
    assert event.type == "Normal"
    assert event.involved_object.kind == "ResourceClaim"
    assert event.involved_object.uid == obj["metadata"]["uid"]
    assert event.message.startswith(f"prepared on {plugin.settings.node_name}: npu-")
    assert "16Gi, 25 % of its compute (guaranteed, normal priority)" in event.message


def test_a_claim_that_cannot_be_prepared_gets_one_warning_with_the_reason(
    plugin: Plugin, kubelet: KubeletClient, kube_client: client.ApiClient
) -> None:
    missing = ClaimRef(namespace=NS, name="ghost", uid="6f1d2c3b-0000-4000-8000-00000000abcd")
    for _ in range(3):  # the kubelet retries a failing prepare
        assert "not found" in kubelet.prepare([missing]).claims[missing.uid].error
    (event,) = within(2.0, lambda: claim_events(kube_client, "ghost", "PrepareFailed"))
    time.sleep(0.3)  # the retries' events would have arrived by now
    assert len(claim_events(kube_client, "ghost", "PrepareFailed")) == 1
    assert event.type == "Warning"
    assert "not found" in event.message
