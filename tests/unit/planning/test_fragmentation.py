"""What the replicas leave: per device used and free, and the free capacity no further replica can use."""

from __future__ import annotations

from controller.settings import PartitionLayout, SliceMode
from dra_driver.core.devices import GIB
from tests.support.plan_cluster import GPU, claim_spec, gpu, node_slices, npu, request, template
from tests.unit.planning.helpers import run, snapshot, workload


def test_full_gpus_strand_what_is_too_small_for_another_share() -> None:
    """Three 24Gi/25 % shares leave 8Gi and 25 % on each H100: free, but too little memory for a fourth."""
    report = run(
        snapshot(node_slices("a", [gpu(0), gpu(1)])),
        workload(template("t", claim_spec(request(GPU, "24Gi", "25")))),
        6,
    )
    assert report.placed == 6
    assert [(d.device, d.one_more, d.stranded) for d in report.devices] == [
        ("gpu-0", False, True),
        ("gpu-1", False, True),
    ]
    assert report.stranded() == {"cores": 50, "memory": 16 * GIB}


def test_a_device_without_room_is_stranded_beside_one_that_still_has_room() -> None:
    """Cores run out first (4 x 25 %): gpu-0 keeps 16Gi nobody can use, gpu-1 is untouched and usable."""
    slices = node_slices("a", [gpu(0), gpu(1)])
    report = run(snapshot(slices), workload(template("t", claim_spec(request(GPU, "16Gi", "25")))), 4)
    by_name = {d.device: d for d in report.devices}
    assert by_name["gpu-0"].replicas == 4
    assert (by_name["gpu-0"].one_more, by_name["gpu-0"].stranded) == (False, True)
    assert by_name["gpu-0"].free == {"memory": 16 * GIB, "cores": 0}
    assert (by_name["gpu-1"].one_more, by_name["gpu-1"].stranded) == (True, False)
    assert {n.name: n.one_more for n in report.nodes} == {"a": True}


def test_devices_the_workload_cannot_use_are_not_its_capacity() -> None:
    slices = node_slices("a", [npu(0), gpu(1)])
    report = run(snapshot(slices), workload(template("t", claim_spec(request(GPU, "24Gi", "25")))), 3)
    assert [d.device for d in report.devices] == ["gpu-1"]


def test_a_two_device_replica_strands_a_free_device_left_alone_on_its_node() -> None:
    """Three GPUs, replicas of two whole-memory devices: the third GPU is free but cannot host a replica."""
    slices = node_slices("a", [gpu(0), gpu(1), gpu(2)])
    report = run(snapshot(slices), workload(template("t", claim_spec(request(GPU, count=2)))), 5)
    assert report.placed == 1
    gpu2 = next(d for d in report.devices if d.device == "gpu-2")
    assert (gpu2.replicas, gpu2.one_more, gpu2.stranded) == (0, False, True)
    assert gpu2.free == {"memory": 80 * GIB, "cores": 100}


def test_partitions_count_per_physical_device_through_its_counters() -> None:
    """Menu layout: 1/2 partitions (40Gi, 50 %) of an 80Gi GPU for 30Gi asks: two per GPU, 20Gi stranded."""
    slices = node_slices("a", [gpu(0)], SliceMode.PARTITIONED, PartitionLayout.MENU)
    selector = 'device.capacity["xpushare.io"].memory.compareTo(quantity("30Gi")) >= 0'
    report = run(snapshot(slices), workload(template("t", claim_spec(request(GPU, selectors=[selector])))), 5)
    (device,) = report.devices
    assert (report.placed, device.device, device.replicas) == (2, "gpu-0", 2)
    assert device.total == {"memory": 80 * GIB, "cores": 100}
    assert device.used == {"memory": 80 * GIB, "cores": 100}
    assert not device.stranded


def test_a_tainted_device_takes_nothing_and_is_not_counted_as_free_for_the_workload() -> None:
    slices = node_slices("a", [gpu(0), gpu(1, sick=True)])
    report = run(snapshot(slices), workload(template("t", claim_spec(request(GPU, "40Gi", "50")))), 5)
    assert report.placed == 2
    assert [d.device for d in report.devices] == ["gpu-0"]
    tolerant = request(
        GPU, "40Gi", "50", tolerations=[{"key": "xpushare.io/unhealthy", "operator": "Exists"}]
    )
    assert run(snapshot(slices), workload(template("t", claim_spec(tolerant))), 5).placed == 4
