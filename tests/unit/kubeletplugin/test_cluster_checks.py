"""``xpushare diagnose``'s API server checks on canned answers: the failures the embedded API server does
not produce (a pod read refused while claims can be listed, the time budget spent), the budget itself,
and which node the plugin serves when --node is not given."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import DeviceType
from dra_driver.core.kube import ApiError
from dra_driver.core.kubetypes import Obj
from kubeletplugin.checkpoint import ClaimState, PreparedClaim, PreparedDevice
from kubeletplugin.cluster_checks import NodeView, check_cluster, served_node
from kubeletplugin.cluster_reader import RESOURCE_CLAIMS, BudgetSpentError, ClusterReader
from kubeletplugin.findings import Finding, Severity

NODE, DRIVER = "node-a", "xpushare.io"


class CannedReader(ClusterReader):
    """Answers from a table: a path's object (or list), or the ApiError to raise for it."""

    def __init__(self, answers: dict[str, Any]) -> None:  # no client: nothing is sent
        self.answers = answers
        self.asked: list[str] = []

    def _answer(self, path: str) -> Any:
        self.asked.append(path)
        answer = self.answers.get(path)
        if isinstance(answer, ApiError):
            raise answer
        return answer

    def get(self, path: str) -> Obj | None:
        found: Obj | None = self._answer(path)
        return found

    def list(self, path: str, **selectors: str) -> list[Obj]:
        found: list[Obj] = self._answer(path) or []
        return found


def _claim(name: str, uid: str, pods: list[str]) -> Obj:
    return {
        "metadata": {"namespace": "default", "name": name, "uid": uid},
        "status": {
            "allocation": {"devices": {"results": [{"driver": DRIVER, "pool": NODE, "device": "npu-0"}]}},
            "reservedFor": [{"resource": "pods", "name": p, "uid": f"uid-{p}"} for p in pods],
        },
    }


def _prepared(name: str, uid: str) -> PreparedClaim:
    device = PreparedDevice(
        NODE,
        "npu-0",
        ("npu",),
        (),
        "NPU-0",
        0,
        DeviceType.NPU,
        1 << 30,
        25,
        Priority.NORMAL,
        ComputePolicy.GUARANTEED,
    )
    return PreparedClaim(uid, "default", name, ClaimState.PREPARE_COMPLETED, (device,))


def _by_subject(findings: list[Finding]) -> dict[str, Finding]:
    return {f.subject: f for f in findings}


def test_a_refused_pod_read_is_one_finding_and_the_other_claim_checks_go_on() -> None:
    forbidden = ApiError("GET /api/v1/namespaces/default/pods/p1: HTTP 403 Forbidden: nope", 403, "Forbidden")
    reader = CannedReader(
        {
            f"/api/v1/nodes/{NODE}": {"metadata": {"name": NODE}},
            RESOURCE_CLAIMS: [_claim("a", "uid-a", ["p1"]), _claim("b", "uid-b", ["p2"])],
            "/api/v1/namespaces/default/pods/p1": forbidden,
        }
    )
    view = NodeView(NODE, DRIVER, None, {"uid-gone": _prepared("gone", "uid-gone")})
    found = _by_subject(check_cluster(reader, view))
    pods = found["Pods"]
    assert (pods.severity, pods.message.split(" (")[0]) == (
        Severity.WARNING,
        "not checked: get on pods is forbidden to this identity",
    )
    assert "/api/v1/namespaces/default/pods/p2" not in reader.asked  # asked once, not for every claim
    assert found["claim default/gone (uid-gone)"].severity is Severity.ERROR  # stale, found all the same
    assert "claim default/a (uid-a)" not in found  # whether its pod runs is not known: no verdict
    assert found["claims"].message == "2 allocated on this node by the API server, 1 prepared here"


def test_a_spent_budget_is_a_warning_and_an_unreachable_server_ends_the_checks() -> None:
    spent = BudgetSpentError("GET /api/v1/nodes/node-a: not sent, the API server used up all 1 s")
    unreachable = ApiError("GET /apis/resource.k8s.io/v1/resourceslices: server not reachable: refused")
    reader = CannedReader(
        {f"/api/v1/nodes/{NODE}": spent, "/apis/resource.k8s.io/v1/resourceslices": unreachable}
    )
    found = check_cluster(reader, NodeView(NODE, DRIVER, None, {}))
    assert [(f.severity, f.subject) for f in found] == [
        (Severity.WARNING, f"Node {NODE}"),
        (Severity.ERROR, "API server"),
    ]
    assert found[0].hint == "raise --api-timeout, or look at the API server's load"
    assert found[1].message.startswith("not reachable: ")
    assert len(reader.asked) == 2  # nothing more was asked of a server that is not there


def test_the_budget_is_shared_by_every_request() -> None:
    now = [100.0]
    reader = ClusterReader(client.ApiClient(), budget_s=5, clock=lambda: now[0])
    now[0] += 5  # no server behind the client: a request sent would fail otherwise
    with pytest.raises(
        BudgetSpentError, match=r"^GET /api/v1/nodes/x: not sent, the API server used up all 5 s$"
    ):
        reader.get("/api/v1/nodes/x")


def test_the_served_node_is_the_pool_of_the_prepared_claims() -> None:
    assert served_node({"u": _prepared("a", "u")}) == NODE
    assert served_node({}) == ""
