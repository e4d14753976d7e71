"""RBAC: each component gets the verbs it uses and nothing beyond (no wildcards, no secrets, no
cluster-wide leases), and every binding ties an existing role to an existing service account."""

from __future__ import annotations

import pytest

from tests.unit.deploy.chart import NAMESPACE, RELEASE, Obj, find, one, render

# (api group, resource) -> verbs each component must hold.
PLUGIN_NEEDS = {
    ("resource.k8s.io", "resourceslices"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("resource.k8s.io", "resourceclaims"): {"get", "list", "watch"},
    ("resource.k8s.io", "deviceclasses"): {"get"},  # diagnose in the plugin's pod
    ("", "nodes"): {"get"},
    ("", "pods"): {"get"},
    ("", "events"): {"create"},
}
CONTROLLER_NEEDS = {
    ("resource.k8s.io", "deviceclasses"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("resource.k8s.io", "resourceslices"): {"list", "delete"},
    ("", "nodes"): {"list", "watch"},
    ("", "events"): {"create"},
}
LEASES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}


def grants(role: Obj) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def _covers(granted: dict[tuple[str, str], set[str]], needed: dict[tuple[str, str], set[str]]) -> None:
    for key, verbs in needed.items():
        assert verbs <= granted.get(key, set()), f"{key}: missing {sorted(verbs - granted.get(key, set()))}"


@pytest.mark.parametrize(
    ("role", "needed"),
    [(f"{RELEASE}-kubelet-plugin", PLUGIN_NEEDS), (f"{RELEASE}-controller", CONTROLLER_NEEDS)],
)
def test_cluster_roles_cover_what_each_component_calls(
    role: str, needed: dict[tuple[str, str], set[str]]
) -> None:
    granted = grants(one(render(), "ClusterRole", role))
    _covers(granted, needed)
    # Least privilege: nothing but the listed resources (events may be in either API group).
    extra = {key for key in granted if key not in needed and key != ("events.k8s.io", "events")}
    assert extra == set()


def test_no_wildcards_and_no_secrets_anywhere() -> None:
    for role in find(render(), "ClusterRole") + find(render(), "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard in {field}"
            assert "secrets" not in rule["resources"]


def test_controller_leases_are_namespaced_to_the_release() -> None:
    objects = render()
    role = one(objects, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    _covers(grants(role), LEASES)
    assert all(key[1] != "leases" for role in find(objects, "ClusterRole") for key in grants(role))


def test_bindings_tie_existing_roles_to_existing_service_accounts() -> None:
    objects = render()
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in find(objects, "ServiceAccount")}
    roles = {(o["kind"], o["metadata"]["name"]) for o in find(objects, "ClusterRole") + find(objects, "Role")}
    bindings = find(objects, "ClusterRoleBinding") + find(objects, "RoleBinding")
    assert len(bindings) == 3
    for binding in bindings:
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in roles
        for subject in binding["subjects"]:
            assert (subject["namespace"], subject["name"]) in accounts
    daemonset_account = one(objects, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"]
    plugin_binding = one(objects, "ClusterRoleBinding", f"{RELEASE}-kubelet-plugin")
    assert plugin_binding["subjects"][0]["name"] == daemonset_account


def test_existing_service_accounts_can_be_named() -> None:
    objects = render({"serviceAccounts": {"kubeletPlugin": {"create": False, "name": "node-agent"}}})
    assert one(objects, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"] == "node-agent"
    binding = one(objects, "ClusterRoleBinding", f"{RELEASE}-kubelet-plugin")
    assert binding["subjects"][0]["name"] == "node-agent"
    assert [o["metadata"]["name"] for o in find(objects, "ServiceAccount")] == [f"{RELEASE}-controller"]
