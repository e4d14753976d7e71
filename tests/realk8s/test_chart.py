"""Every object the Helm chart renders, applied server-side with dry run to the real v1.36 API server: the
server's own validation and admission accept them (DaemonSet and Deployment specs, RBAC, DeviceClasses
with their CEL, the ValidatingAdmissionPolicy, the webhook configuration), for the default values and
each variant the chart tests render. Kinds of add-ons the cluster lacks (the Prometheus Operator's
PrometheusRule, cert-manager's Issuer and Certificate) are the one exception, told apart by the
server's own discovery."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from tests.realk8s.conftest import Cluster
from tests.unit.deploy.chart import VARIANTS, render

# Kinds of add-ons a bare cluster does not serve: the Prometheus Operator's and cert-manager's.
ADD_ON_KINDS = {("monitoring.coreos.com/v1", "PrometheusRule"), ("cert-manager.io/v1", "Issuer"),
                ("cert-manager.io/v1", "Certificate")}
ALL_ON = {"monitoring": {"dashboard": {"enabled": True}, "prometheusRule": {"enabled": True}}}


def _dry_run(api: dynamic.DynamicClient, obj: dict[str, Any], namespace: str) -> str | None:
    """Apply ``obj`` server-side with dryRun=All (as ``kubectl apply --server-side --dry-run=server``
    does: it works whether or not another test already created the object); None when accepted, else
    the server's message."""
    try:
        resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    except ResourceNotFoundError:
        return "kind not served"
    target = obj["metadata"].get("namespace", namespace) if resource.namespaced else None
    try:
        resource.server_side_apply(body=obj, namespace=target, field_manager="xpushare-chart-test",
                                   force_conflicts=True, dry_run="All")
    except ApiException as err:
        return f"{err.status}: {err.body}"
    return None


@pytest.mark.parametrize("variant", ["default", "all-monitoring", *sorted(VARIANTS)])
def test_every_rendered_object_is_accepted_by_the_real_api_server(
        real_cluster: Cluster, namespace: str, variant: str) -> None:
    values = {} if variant == "default" else ALL_ON if variant == "all-monitoring" else VARIANTS[variant]
    objects = render(values, namespace=namespace)
    api = dynamic.DynamicClient(real_cluster.api)
    refused = {}
    for obj in objects:
        message = _dry_run(api, obj, namespace)
        key = (obj["apiVersion"], obj["kind"])
        if message is not None and not (key in ADD_ON_KINDS and message == "kind not served"):
            refused[f"{obj['kind']}/{obj['metadata']['name']}"] = message
    assert objects
    assert refused == {}, refused
