"""The chart lints clean, renders with every variant, and refuses bad values with a message naming them."""

from __future__ import annotations

import tomllib
from typing import Any

import helm_python
import pytest

from tests.unit.deploy.chart import (
    CHART_DIR,
    NAMESPACE,
    PROJECT_ROOT,
    RELEASE,
    VARIANTS,
    find,
    render,
    render_files,
)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chart_lints_without_warnings(variant: str) -> None:
    report = helm_python.lint(CHART_DIR, VARIANTS[variant], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_renders_the_plugin_and_the_controller(variant: str) -> None:
    objects = render(VARIANTS[variant])
    assert [o["metadata"]["name"] for o in find(objects, "DaemonSet")] == [f"{RELEASE}-kubelet-plugin"]
    assert [o["metadata"]["name"] for o in find(objects, "Deployment")] == [f"{RELEASE}-controller"]
    for obj in objects:
        assert obj["apiVersion"], obj
        assert obj["metadata"]["name"], obj
        if obj["kind"] in {
            "DaemonSet",
            "Deployment",
            "ServiceAccount",
            "Service",
            "Secret",
            "ConfigMap",
            "Role",
        }:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


def test_default_render_holds_every_component() -> None:
    kinds = sorted({o["kind"] for o in render()})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "Deployment",
        "DeviceClass",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    ]


def test_disabling_the_webhook_drops_its_objects_only() -> None:
    objects = render({"webhook": {"enabled": False}})
    for kind in ("Service", "Secret", "ValidatingWebhookConfiguration"):
        assert find(objects, kind) == []
    assert find(objects, "ValidatingAdmissionPolicy"), "the slice policy does not depend on the webhook"


def test_optional_objects_can_be_switched_off() -> None:
    objects = render(
        {
            "deviceClasses": {"create": False},
            "admissionPolicy": {"enabled": False},
            "rbac": {"create": False},
            "serviceAccounts": {"kubeletPlugin": {"create": False}, "controller": {"create": False}},
        }
    )
    kinds = {o["kind"] for o in objects}
    assert kinds.isdisjoint(
        {"DeviceClass", "ValidatingAdmissionPolicy", "ClusterRole", "RoleBinding", "ServiceAccount"}
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"sliceMode": "shared"}, "/sliceMode"),
        ({"discovery": {"backend": "rocm"}}, "/discovery/backend"),
        ({"logging": {"level": "TRACE"}}, "/logging/level"),
        ({"webhook": {"failurePolicy": "Never"}}, "/webhook/failurePolicy"),
        ({"webhook": {"tls": {"source": "vault"}}}, "/webhook/tls/source"),
        ({"kubeletPlugin": {"maxParallelClaims": 0}}, "/kubeletPlugin/maxParallelClaims"),
        ({"paths": {"cdiDir": "var/run/cdi"}}, "/paths/cdiDir"),
        ({"kubeletPlugin": {"healthIntervall": 5}}, "healthIntervall"),
        ({"driverName": "XPUShare.IO"}, "/driverName"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_bad_values_are_refused_naming_the_key(values: dict[str, Any], named: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=named):
        render_files(values)


def test_secret_tls_source_requires_a_ca_bundle() -> None:
    with pytest.raises(helm_python.HelmError, match=r"webhook\.tls\.caBundle"):
        render_files({"webhook": {"tls": {"source": "secret", "secretName": "my-tls"}}})


def test_notes_tell_how_to_verify_the_install() -> None:
    notes = render_files({"driverName": "share.example.com"})["xpushare/templates/NOTES.txt"]
    assert "kubectl get resourceslices --field-selector spec.driver=share.example.com" in notes
    assert f"daemonset/{RELEASE}-kubelet-plugin" in notes
    assert "deviceClassName: npu.share.example.com" in notes


def test_plugins_only_release_renders_no_controller_and_no_cluster_singletons() -> None:
    """A second release for another group of nodes: node plugins and their policy, nothing shared."""
    objects = render(
        {"controller": {"enabled": False}, "deviceClasses": {"create": False}},
        release="xpushare-gpu",
    )
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    names = {o["metadata"]["name"] for o in objects}
    assert names.isdisjoint({o["metadata"]["name"] for o in render() if o["kind"] != "Namespace"})


def test_chart_versions_follow_the_package() -> None:
    """The image tag defaults to appVersion: it must name the package version the image is built from."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    with helm_python.Chart.load(CHART_DIR) as chart:
        metadata = chart.metadata
    assert metadata["apiVersion"] == "v2"
    assert metadata["appVersion"] == project["project"]["version"]
    assert metadata["kubeVersion"] == ">=1.34.0-0"
    dockerfile = (PROJECT_ROOT / "deploy" / "image" / "Dockerfile").read_text()
    assert f"ARG VERSION={project['project']['version']}" in dockerfile
