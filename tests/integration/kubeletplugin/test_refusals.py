"""Bad claims get clear errors, each in its own entry, without touching the other claims of the call;
concurrent claims never over-commit a device."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client

from dra_driver.core.metrics import default_registry
from dra_driver.simulation.kubelet import ClaimRef, KubeletClient
from kubeletplugin import cdi
from kubeletplugin.plugin import Plugin
from tests.integration.kubeletplugin.conftest import NODE, NS, Allocate, claim_body, read_claim, ref
from tests.support.cdi_schema import validate_cdi_spec
from tests.support.plugin_claims import opaque, result, shared, sharing


def _write_allocation(
    kube_client: client.ApiClient,
    name: str,
    results: list[dict[str, Any]],
    configs: list[dict[str, Any]] = (),
) -> dict[str, Any]:  # type: ignore[assignment]
    """An allocation written by hand, as a buggy or foreign scheduler could."""
    resource = client.ResourceV1Api(kube_client)
    resource.create_namespaced_resource_claim(NS, claim_body(name))
    current = read_claim(kube_client, name)
    current["status"] = {
        "allocation": {"devices": {"results": results, "config": list(configs)}},
        "reservedFor": [{"resource": "pods", "name": f"{name}-pod", "uid": str(uuid.uuid4())}],
    }
    try:
        resource.replace_namespaced_resource_claim_status(name, NS, current)
    except client.ApiException as err:
        if err.status != 404:
            raise
        resource.replace_namespaced_resource_claim(name, NS, current)  # a server without the subresource
    return read_claim(kube_client, name)


def test_each_bad_claim_gets_its_own_clear_error_and_the_good_one_is_prepared(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, kube_client: client.ApiClient
) -> None:
    good = allocate("good")
    unallocated = client.ResourceV1Api(kube_client).create_namespaced_resource_claim(
        NS, claim_body("pending")
    )
    other_node = _write_allocation(kube_client, "elsewhere", [result("npu-0", pool="node-b")])
    other_driver = _write_allocation(
        kube_client, "foreign", [result("nic-0", driver="net.example.com", pool="x")]
    )
    malformed = _write_allocation(
        kube_client, "typo", [result("npu-1")], [opaque(sharing(corePercnt=25), source="FromClaim")]
    )
    replaced = allocate("replaced")
    client.ResourceV1Api(kube_client).delete_namespaced_resource_claim("replaced", NS)
    client.ResourceV1Api(kube_client).create_namespaced_resource_claim(NS, claim_body("replaced"))

    claims = [
        ref(good),
        ClaimRef(NS, "pending", unallocated.metadata.uid),
        ref(other_node),
        ref(other_driver),
        ref(malformed),
        ref(replaced),
        ClaimRef(NS, "ghost", "ghost-uid"),
    ]
    response = kubelet.prepare(claims)

    errors = {c.name: response.claims[c.uid].error for c in claims}
    assert errors["good"] == ""
    assert "not allocated" in errors["pending"]
    assert "allocated on pool(s) node-b, but this node serves pool node-a" in errors["elsewhere"]
    assert "no device of driver xpushare.io" in errors["foreign"]
    assert "invalid SharingConfig" in errors["typo"]
    assert "corePercnt: unknown field" in errors["typo"]
    assert "re-created" in errors["replaced"]
    assert "not found" in errors["ghost"]
    for c in claims:
        if c.name != "good":
            assert f"claim {NS}/{c.name} (uid {c.uid})" in errors[c.name]
    assert cdi.listed_claims(plugin.settings.cdi_dir) == {good["metadata"]["uid"]}


def test_hundred_concurrent_claims_on_one_device_never_exceed_its_capacity(
    plugin: Plugin, kubelet: KubeletClient, kube_client: client.ApiClient, schemas_dir: Path
) -> None:
    """The scheduler is bypassed on purpose: the plugin is the last line of defence."""
    claims = [
        _write_allocation(kube_client, f"c{n}", [shared("npu-0", memory="1Gi", cores="3")])
        for n in range(100)
    ]
    errors: dict[str, str] = {}
    lock = threading.Lock()

    def call(chunk: list[dict[str, Any]]) -> None:
        response = kubelet.prepare([ref(c) for c in chunk])
        with lock:
            errors.update({uid: answer.error for uid, answer in response.claims.items()})

    threads = [threading.Thread(target=call, args=(claims[n::10],)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(errors) == 100
    prepared = [uid for uid, error in errors.items() if not error]
    assert len(prepared) == 33
    refused = [error for error in errors.values() if error]
    assert all("device npu-0 would be over-committed" in error for error in refused)
    assert plugin.preparer is not None
    uuid_0 = plugin.preparer.catalog.get("npu-0").physical.uuid  # type: ignore[union-attr]
    assert plugin.preparer.accounting.used(uuid_0) == (33 << 30, 99)
    assert len(cdi.listed_claims(plugin.settings.cdi_dir)) == 33
    for uid in prepared:
        validate_cdi_spec(json.loads(cdi.spec_path(plugin.settings.cdi_dir, uid).read_text()), schemas_dir)
    assert default_registry().histogram("xpushare_prepare_seconds", "").count(
        operation="prepare", outcome="error"
    ) >= 67
    assert default_registry().counter("xpushare_claim_errors_total", "").value(
        operation="prepare", reason="overcommit"
    ) >= 67


def test_stop_removes_both_sockets(plugin: Plugin) -> None:
    sockets: list[Path] = [plugin.settings.dra_socket, plugin.settings.registration_socket]
    assert all(s.exists() for s in sockets)
    plugin.stop()
    assert not any(s.exists() for s in sockets)
    assert plugin.settings.node_name == NODE
