"""The cluster controller's leader election on real coordination.k8s.io/v1 Leases: two replicas, one
leads; when it stops (or dies holding the lease) the other takes over."""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client

from controller.cluster import ClusterController, ControllerSettings
from controller.leader import LeaderElector
from controller.settings import LeaderSettings
from dra_driver.core.kube import KubeApi
from tests.realk8s.conftest import Cluster, wait_for

LEASE_S = 4.0


def leader_settings(namespace: str) -> LeaderSettings:
    return LeaderSettings(
        namespace=namespace,
        lease_name="xpushare-controller",
        lease_duration_seconds=LEASE_S,
        renew_deadline_seconds=3.0,
        retry_period_seconds=0.5,
    )


def read_lease(cluster: Cluster, namespace: str) -> dict[str, Any]:
    lease: dict[str, Any] = cluster.json(
        client.CoordinationV1Api(cluster.api).read_namespaced_lease("xpushare-controller", namespace)
    )
    return lease


class Replica:
    """One controller replica running in a thread, recording when it starts leading."""

    def __init__(self, cluster: Cluster, name: str, namespace: str, leading: list[str]) -> None:
        settings = ControllerSettings(identity=name, leader=leader_settings(namespace), resync_seconds=1.0)
        self.name = name
        self.stop = threading.Event()
        self.controller = ClusterController(KubeApi(cluster.api), settings)
        self.thread = threading.Thread(
            target=self.controller.run, args=(self.stop, lambda: leading.append(name)), daemon=True
        )

    def start(self) -> Replica:
        self.thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def test_two_replicas_elect_one_leader_and_the_other_takes_over_when_it_stops(
    real_cluster: Cluster, namespace: str
) -> None:
    leading: list[str] = []
    replicas = {n: Replica(real_cluster, n, namespace, leading).start() for n in ("replica-1", "replica-2")}
    try:
        wait_for("a leader", lambda: len(leading) >= 1, timeout_s=20)
        time.sleep(1.5)  # three retry periods: the other replica must stay a follower
        assert len(leading) == 1
        first = leading[0]
        assert read_lease(real_cluster, namespace)["spec"]["holderIdentity"] == first

        started = time.monotonic()
        replicas[first].halt()
        wait_for("a take-over", lambda: len(leading) == 2, timeout_s=20)
        assert leading[1] != first
        assert time.monotonic() - started < LEASE_S  # released on stop, not waited out
        spec = read_lease(real_cluster, namespace)["spec"]
        assert spec["holderIdentity"] == leading[1]
        assert spec["leaseTransitions"] >= 1
    finally:
        for replica in replicas.values():
            replica.halt()


def test_a_replica_takes_over_a_lease_whose_holder_died_without_releasing_it(
    real_cluster: Cluster, namespace: str
) -> None:
    dead = LeaderElector(KubeApi(real_cluster.api), "crashed", leader_settings(namespace))
    assert dead.try_acquire_or_renew()  # holds the lease, then never renews (a killed process)
    leading: list[str] = []
    started = time.monotonic()
    replica = Replica(real_cluster, "replica-2", namespace, leading).start()
    try:
        time.sleep(1.0)
        assert leading == []  # the lease is still fresh
        wait_for("a take-over", lambda: leading == ["replica-2"], timeout_s=20)
        assert time.monotonic() - started >= LEASE_S - 0.5  # waited for the lease to expire
        spec = read_lease(real_cluster, namespace)["spec"]
        assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("replica-2", 1)
    finally:
        replica.halt()
