"""The admission webhook called by the real API server: a ValidatingWebhookConfiguration whose caBundle
trusts the controller's HTTPS server on loopback, as the chart's does through its Service. A claim with a
bad SharingConfig is refused at create with the decoder's message naming the field; a good one is
created. The configuration selects only this test's namespace, so other tests are never sent to it."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.admission import WebhookServer
from tests.realk8s.conftest import Cluster
from tests.support.certs import NO_OPENSSL, have_openssl, self_signed
from tests.unit.controller.admission.objects import BAD, GOOD, configs

DRIVER = "xpushare.io"


@pytest.fixture
def webhook_namespace(real_cluster: Cluster, tmp_path: Path) -> Iterator[str]:
    """A namespace whose claims the real API server sends to our webhook (and only its claims)."""
    if not have_openssl():
        pytest.skip(NO_OPENSSL)
    cert, key = self_signed(tmp_path)
    server = WebhookServer(cert, key, driver_name=DRIVER, host="127.0.0.1", port=0).start()
    name = f"hook-{uuid.uuid4().hex[:8]}"
    labels = {"xpushare-webhook-test": name}
    real_cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name,
                                                                                        labels=labels)))
    admission = client.AdmissionregistrationV1Api(real_cluster.api)
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "sharingconfig.xpushare.io",
            "clientConfig": {"url": f"https://127.0.0.1:{server.port}/validate",
                             "caBundle": base64.b64encode(cert.read_bytes()).decode()},
            "rules": [{"apiGroups": ["resource.k8s.io"], "apiVersions": ["v1"],
                       "operations": ["CREATE", "UPDATE"],
                       "resources": ["resourceclaims", "resourceclaimtemplates"]}],
            "namespaceSelector": {"matchLabels": labels},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
        }],
    }
    admission.create_validating_webhook_configuration(config)
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            admission.delete_validating_webhook_configuration(name)
        with contextlib.suppress(ApiException):
            real_cluster.core.delete_namespace(name)
        server.stop()


def _claim(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": {"devices": {
            "requests": [{"name": "gpu", "exactly": {"deviceClassName": f"gpu.{DRIVER}"}}],
            "config": configs(parameters, driver=DRIVER),
        }},
    }


def test_the_real_api_server_refuses_a_bad_sharing_config_through_the_webhook(
        real_cluster: Cluster, webhook_namespace: str) -> None:
    claims = real_cluster.resource
    with pytest.raises(ApiException) as refused:
        claims.create_namespaced_resource_claim(webhook_namespace, _claim("bad", BAD))
    assert refused.value.status == 422, refused.value.body  # Invalid, as the webhook answered
    message = json.loads(refused.value.body)["message"]
    assert message.startswith('admission webhook "sharingconfig.xpushare.io" denied the request')
    field = "spec.devices.config[0].opaque.parameters.corePercent"
    assert f"{field}: must be between 1 and 100 (got 150)" in message
    created = claims.create_namespaced_resource_claim(webhook_namespace, _claim("good", GOOD))
    assert created.metadata.name == "good"
