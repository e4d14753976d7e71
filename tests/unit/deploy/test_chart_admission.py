"""Admission: the webhook configuration reaches the controller over TLS it can verify, and the
ValidatingAdmissionPolicy ties slice writes to the plugin's own node."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import celpy
import pytest
from celpy import celtypes
from celpy.adapter import json_to_cel

from tests.unit.deploy.chart import NAMESPACE, RELEASE, VARIANTS, Obj, one, render

SERVICE_DNS = f"{RELEASE}-webhook.{NAMESPACE}.svc"


def _webhooks(objects: list[Obj]) -> dict[str, Obj]:
    config = one(objects, "ValidatingWebhookConfiguration")
    return {hook["name"]: hook for hook in config["webhooks"]}


def test_webhook_validates_claims_templates_and_device_classes_in_v1() -> None:
    hooks = _webhooks(render())
    assert set(hooks) == {"claims.xpushare.io", "deviceclasses.xpushare.io"}
    resources = set()
    for hook in hooks.values():
        assert hook["failurePolicy"] == "Ignore"
        assert hook["matchPolicy"] == "Equivalent"  # v1beta* requests arrive converted to v1
        assert hook["sideEffects"] == "None"
        assert hook["clientConfig"]["service"] == {
            "name": f"{RELEASE}-webhook",
            "namespace": NAMESPACE,
            "port": 443,
            "path": "/validate",
        }
        for rule in hook["rules"]:
            assert rule["apiGroups"] == ["resource.k8s.io"]
            assert rule["apiVersions"] == ["v1"]
            assert rule["operations"] == ["CREATE", "UPDATE"]
            resources.update(rule["resources"])
    assert resources == {"resourceclaims", "resourceclaimtemplates", "deviceclasses"}


def test_failure_policy_is_configurable() -> None:
    hooks = _webhooks(render({"webhook": {"failurePolicy": "Fail", "timeoutSeconds": 3}}))
    assert {(h["failurePolicy"], h["timeoutSeconds"]) for h in hooks.values()} == {("Fail", 3)}


def test_controller_managed_device_classes_skip_the_webhook() -> None:
    """The chart's own classes are created in the same install as the webhook, before it answers."""
    objects = render()
    selector = _webhooks(objects)["deviceclasses.xpushare.io"]["objectSelector"]["matchExpressions"][0]
    label = selector["key"]
    for device_class in [o for o in objects if o["kind"] == "DeviceClass"]:
        assert device_class["metadata"]["labels"][label] in selector["values"]
    assert selector["operator"] == "NotIn"
    assert "objectSelector" not in _webhooks(objects)["claims.xpushare.io"]


def _pem(data: str) -> bytes:
    return base64.b64decode(data)


def test_generated_certificate_is_signed_by_the_ca_bundle_for_the_service_name(tmp_path: Path) -> None:
    objects = render()
    secret = one(objects, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    bundles = {h["clientConfig"]["caBundle"] for h in _webhooks(objects).values()}
    assert bundles == {secret["data"]["ca.crt"]}
    deployment = one(objects, "Deployment")
    volume = deployment["spec"]["template"]["spec"]["volumes"][0]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: certificate chain not checked")
    (tmp_path / "ca.pem").write_bytes(_pem(secret["data"]["ca.crt"]))
    (tmp_path / "tls.pem").write_bytes(_pem(secret["data"]["tls.crt"]))
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", tmp_path / "ca.pem", tmp_path / "tls.pem"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    names = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", tmp_path / "tls.pem"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"DNS:{SERVICE_DNS}" in names.stdout


def test_cert_manager_source_injects_the_ca_and_issues_the_secret() -> None:
    objects = render(VARIANTS["cert-manager"])
    config = one(objects, "ValidatingWebhookConfiguration")
    certificate = one(objects, "Certificate")
    annotation = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/{certificate['metadata']['name']}"
    assert all("caBundle" not in h["clientConfig"] for h in config["webhooks"])
    assert SERVICE_DNS in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == one(objects, "Issuer")["metadata"]["name"]
    secret_volume = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["secret"]
    assert secret_volume["secretName"] == certificate["spec"]["secretName"]
    assert [o for o in objects if o["kind"] == "Secret"] == []


def test_secret_source_uses_the_given_secret_and_ca_bundle() -> None:
    values = {"webhook": {"tls": {"source": "secret", "secretName": "my-tls", "caBundle": "Q0E="}}}
    objects = render(values)
    assert [o for o in objects if o["kind"] in {"Secret", "Certificate"}] == []
    assert {h["clientConfig"]["caBundle"] for h in _webhooks(objects).values()} == {"Q0E="}
    volume = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    assert volume["secret"]["secretName"] == "my-tls"


def test_slice_policy_matches_the_plugin_service_account_and_its_node_claim() -> None:
    objects = render({"driverName": "share.example.com"})
    policy = one(objects, "ValidatingAdmissionPolicy")
    binding = one(objects, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    rule = spec["matchConstraints"]["resourceRules"][0]
    assert (rule["resources"], rule["operations"]) == (["resourceslices"], ["CREATE", "UPDATE", "DELETE"])
    account = one(objects, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"]
    condition = spec["matchConditions"][0]["expression"]
    assert f'"system:serviceaccount:{NAMESPACE}:{account}"' in condition
    variables = {v["name"]: v["expression"] for v in spec["variables"]}
    assert 'request.userInfo.extra["authentication.kubernetes.io/node-name"]' in variables["userNodeName"]
    assert "spec.nodeName" in variables["objectNodeName"]
    expressions = [v["expression"] for v in spec["validations"]]
    assert "variables.userNodeName == variables.objectNodeName" in expressions
    assert 'variables.slice.spec.driver == "share.example.com"' in expressions


def _cel(expression: str, activation: dict[str, Any]) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(expression)).evaluate(activation)


def _decide(policy: Obj, username: str, node: str | None, slice_obj: Obj) -> list[str] | None:
    """Evaluate the policy as the API server does (match conditions, variables in order, validations):
    None when it does not apply, else the messages of failed validations."""
    extra = {"authentication.kubernetes.io/node-name": [node]} if node else {}
    request = {"operation": "CREATE", "userInfo": {"username": username, "extra": extra}}
    activation: dict[str, Any] = {"request": json_to_cel(request), "object": json_to_cel(slice_obj)}
    activation["oldObject"] = json_to_cel(None)
    if not all(bool(_cel(c["expression"], activation)) for c in policy["spec"]["matchConditions"]):
        return None
    variables: dict[Any, Any] = {}
    for variable in policy["spec"]["variables"]:
        activation["variables"] = celtypes.MapType(variables)
        variables[celtypes.StringType(variable["name"])] = _cel(variable["expression"], activation)
    activation["variables"] = celtypes.MapType(variables)
    return [
        str(_cel(v["messageExpression"], activation)) if "messageExpression" in v else v["message"]
        for v in policy["spec"]["validations"]
        if not bool(_cel(v["expression"], activation))
    ]


def test_rendered_slice_policy_confines_a_plugin_to_its_node_and_driver() -> None:
    objects = render({"driverName": "share.example.com"}, release="gpu", namespace="accel")
    policy = one(objects, "ValidatingAdmissionPolicy")
    account = one(objects, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"]
    plugin = f"system:serviceaccount:accel:{account}"
    own = {"spec": {"driver": "share.example.com", "nodeName": "node-a"}}
    other_node = {"spec": {"driver": "share.example.com", "nodeName": "node-b"}}
    other_driver = {"spec": {"driver": "xpushare.io", "nodeName": "node-a"}}
    assert _decide(policy, plugin, "node-a", own) == []
    for node, slice_obj, message in [
        ("node-a", other_node, "node 'node-b'"),
        ("node-a", other_driver, "driver 'xpushare.io'"),
        (None, own, "no node is associated"),
    ]:
        failures = _decide(policy, plugin, node, slice_obj)
        assert failures is not None
        assert any(message in failure for failure in failures), failures
    assert _decide(policy, "system:serviceaccount:accel:someone-else", "node-a", other_node) is None
