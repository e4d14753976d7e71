"""The cluster controller: DeviceClasses, collection of pools of deleted nodes, leader election."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.cluster import ClusterController, ControllerSettings
from controller.deviceclasses import device_classes, install_device_classes
from controller.leader import LeaderElector
from controller.publisher import KubeApi, SlicePublisher
from controller.settings import LeaderSettings, SliceMode, SliceSettings
from dra_driver.core.kube import DEVICE_CLASSES, NODES, RESOURCE_SLICES
from dra_driver.core.metrics import Registry
from tests.support.resource_schema import RESOURCE_V1, errors
from tests.unit.controller.slices.inventory import gpu, npu

Obj = dict[str, Any]
FAST = LeaderSettings(
    namespace="kube-system", lease_duration_seconds=1.0, renew_deadline_seconds=0.6, retry_period_seconds=0.1
)


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.now += seconds
        return stop.is_set()


def test_device_classes_are_installed_valid_and_restored_after_an_edit(
    api: KubeApi, schemas_dir: Path
) -> None:
    classes = device_classes()
    assert install_device_classes(api, classes).created == ("npu.xpushare.io", "gpu.xpushare.io")
    for obj in api.list(DEVICE_CLASSES):
        assert errors(schemas_dir, RESOURCE_V1, "io.k8s.api.resource.v1.DeviceClass", obj) == []
    assert install_device_classes(api, classes).unchanged == ("npu.xpushare.io", "gpu.xpushare.io")
    edited = api.get(f"{DEVICE_CLASSES}/npu.xpushare.io")
    edited["spec"]["selectors"] = [{"cel": {"expression": "true"}}]
    api.replace(f"{DEVICE_CLASSES}/npu.xpushare.io", edited)
    assert install_device_classes(api, classes).updated == ("npu.xpushare.io",)
    expression = api.get(f"{DEVICE_CLASSES}/npu.xpushare.io")["spec"]["selectors"][0]["cel"]["expression"]
    assert expression == 'device.driver == "xpushare.io" && device.attributes["xpushare.io"].type == "npu"'


def test_pools_of_deleted_nodes_are_collected(api: KubeApi, make_node: Callable[[str], Obj]) -> None:
    nodes = {name: make_node(name) for name in ("keep", "gone")}
    for name in ("keep", "gone", "never-existed"):
        # Without the Node's uid there is no owner reference, so only this collection removes the pool.
        node_uid = nodes[name]["metadata"]["uid"] if name == "keep" else None
        publisher = SlicePublisher(api, name, SliceSettings(mode=SliceMode.CONSUMABLE), node_uid=node_uid)
        publisher.publish([npu(i) for i in range(130)] if name == "gone" else [gpu(0)])
    api.delete(f"{NODES}/gone")
    registry = Registry()
    controller = ClusterController(api, ControllerSettings(leader=FAST), registry)
    deleted = controller.collect_orphaned_pools()
    assert sorted(deleted) == ["gone-xpushare-io-0", "gone-xpushare-io-1", "never-existed-xpushare-io-0"]
    remaining = [obj["spec"]["nodeName"] for obj in api.list(RESOURCE_SLICES)]
    assert remaining == ["keep"]
    assert registry.counter("xpushare_orphaned_slices_deleted_total", "").value() == 3
    assert controller.collect_orphaned_pools() == []


def test_an_expired_lease_is_taken_over_and_the_old_leader_steps_down(api: KubeApi) -> None:
    clock = FakeClock()
    first = LeaderElector(api, "replica-1", FAST, clock)
    second = LeaderElector(api, "replica-2", FAST, clock)
    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()
    clock.now += 0.5
    assert first.try_acquire_or_renew()  # renewed: the lease record changed
    clock.now += 0.9
    assert not second.try_acquire_or_renew()  # sees the renewal now: expiry counts from this moment
    clock.now += 0.9
    assert not second.try_acquire_or_renew()
    clock.now += 0.2  # replica-1 has not renewed for a whole lease duration of replica-2's clock
    assert second.try_acquire_or_renew()
    assert not first.try_acquire_or_renew()
    lease = api.get(first.path)["spec"]
    assert (lease["holderIdentity"], lease["leaseTransitions"]) == ("replica-2", 1)


def test_two_controller_replicas_elect_one_leader_and_the_other_takes_over(api: KubeApi) -> None:
    leading: list[str] = []
    stops = {name: threading.Event() for name in ("replica-1", "replica-2")}
    threads = []
    for name, stop in stops.items():
        controller = ClusterController(
            api, ControllerSettings(identity=name, leader=FAST, resync_seconds=0.2)
        )
        thread = threading.Thread(
            target=controller.run, args=(stop, lambda n=name: leading.append(n)), daemon=True
        )
        thread.start()
        threads.append(thread)
    try:
        wait_for(lambda: len(leading) >= 1, "a leader")
        time.sleep(0.5)  # several retry periods: the other replica must stay a follower
        assert len(leading) == 1
        first = leading[0]
        assert {obj["metadata"]["name"] for obj in api.list(DEVICE_CLASSES)} == {
            "npu.xpushare.io",
            "gpu.xpushare.io",
        }
        started = time.monotonic()
        stops[first].set()
        wait_for(lambda: len(leading) == 2, "a take-over")
        assert leading[1] != first
        assert time.monotonic() - started < FAST.lease_duration_seconds  # released, not waited out
    finally:
        for stop in stops.values():
            stop.set()
        for thread in threads:
            thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_leader_whose_work_ends_steps_down_and_releases_the_lease(api: KubeApi) -> None:
    elector = LeaderElector(api, "replica-1", FAST)
    runner = threading.Thread(target=elector.run, args=(threading.Event(), lambda lost: None), daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert api.get(elector.path)["spec"]["holderIdentity"] == ""
    assert not elector.is_leader
