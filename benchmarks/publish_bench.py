"""Slice publishing speed, each figure beside a baseline measured in the same run.

1. Publishing 128 devices into an empty pool (target < 300 ms): the SlicePublisher (plain JSON through
   the official ApiClient) against the official client's typed models (``ResourceV1Api`` with
   ``V1ResourceSlice``), both listing the pool and creating the same slices.
2. A no-change reconcile of 1,000 nodes' pools (target < 2 s): one list of all pools, then a semantic
   diff per node, against the baseline of one list call per node.

Runs against the embedded API server on loopback. Usage: ``python benchmarks/publish_bench.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client
from upstream import use_upstream_schemas

from controller.publisher import KubeApi, SlicePublisher, list_pools
from controller.settings import RetrySettings, SliceMode, SliceSettings
from controller.slices import build_slices
from dra_driver.core.devices import GIB, Device, DeviceType
from dra_driver.core.metrics import Registry
from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.apiserver.handler import ApiHandler

SELECTOR = "spec.nodeName={node},spec.driver=xpushare.io"


def devices(count: int) -> list[Device]:
    return [
        Device(
            type=DeviceType.NPU, vendor="huawei", model="Ascend910B3", uuid=f"uuid-{i:05d}", index=i,
            memory_bytes=64 * GIB, cores=20, device_node=f"/dev/davinci{i}", minor=i,
            pci_bus_id=f"0000:{i % 256:02x}:00.0", numa_node=i % 2, driver_version="24.1.rc2",
            runtime_version="8.0.RC2",
        )
        for i in range(count)
    ]  # fmt: skip


def median_ms(run: Callable[[int], object], repeats: int) -> float:
    samples = []
    for attempt in range(repeats):
        started = time.perf_counter()
        run(attempt)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def publisher(api: KubeApi, node: str, mode: SliceMode) -> SlicePublisher:
    return SlicePublisher(api, node, SliceSettings(mode=mode), retry=RetrySettings(), registry=Registry())


def typed_publish(
    resource: client.ResourceV1Api, node: str, inventory: list[Device], mode: SliceMode
) -> None:
    """Baseline: the same list and creates through the typed models of the official client."""
    resource.list_resource_slice(field_selector=SELECTOR.format(node=node))
    api_client = resource.api_client
    for obj in build_slices(node, inventory, mode, SliceSettings(mode=mode), generation=1):
        model = api_client._ApiClient__deserialize(obj, "V1ResourceSlice")
        resource.create_resource_slice(model)


def bench_publish(api: KubeApi, resource: client.ResourceV1Api, repeats: int) -> None:
    inventory = devices(128)
    print("publish 128 devices into an empty pool (median ms; target < 300 ms in consumable mode)")
    print(f"  {'mode':<12} {'SlicePublisher':>15} {'typed client (baseline)':>24}")
    for mode in (SliceMode.CONSUMABLE, SliceMode.PARTITIONED, SliceMode.EXCLUSIVE):

        def ours_once(n: int, mode: SliceMode = mode) -> object:
            return publisher(api, f"p-{mode.value}-{n}", mode).publish(inventory)

        def typed_once(n: int, mode: SliceMode = mode) -> None:
            typed_publish(resource, f"t-{mode.value}-{n}", inventory, mode)

        ours, typed = median_ms(ours_once, repeats), median_ms(typed_once, repeats)
        print(f"  {mode.value:<12} {ours:>15.1f} {typed:>24.1f}")


def bench_no_change(api: KubeApi, nodes: int, repeats: int) -> None:
    inventory = devices(8)
    publishers = [publisher(api, f"node-{i:04d}", SliceMode.CONSUMABLE) for i in range(nodes)]
    for pub in publishers:
        pub.publish(inventory)

    def one_list(_: int) -> None:
        pools = list_pools(api, "xpushare.io")
        writes = sum(pub.publish(inventory, stored=pools.get(pub.node_name, [])).writes for pub in publishers)
        assert writes == 0, writes

    def list_per_node(_: int) -> None:
        assert sum(pub.publish(inventory).writes for pub in publishers) == 0

    ours = median_ms(one_list, repeats)
    baseline = median_ms(list_per_node, repeats)
    print(f"no-change reconcile of {nodes} nodes' pools, 8 devices each (median ms; target < 2000 ms)")
    print(f"  {'one list + diff':>16} {'one list per node (baseline)':>30}")
    print(f"  {ours:>16.1f} {baseline:>30.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer nodes and repeats (a smoke run)")
    args = parser.parse_args()
    print(use_upstream_schemas())
    repeats, nodes = (3, 100) if args.quick else (7, 1000)
    # Go's net/http (a real API server) sends with TCP_NODELAY; without it the embedded server's split
    # header/body writes meet delayed ACKs and add 40 ms to every call, which would measure the simulator.
    ApiHandler.disable_nagle_algorithm = True
    with ApiServer() as server, client.ApiClient(configuration_for(server)) as api_client:
        bench_publish(KubeApi(api_client), client.ResourceV1Api(api_client), repeats)
    with ApiServer() as server, client.ApiClient(configuration_for(server)) as api_client:
        bench_no_change(KubeApi(api_client), nodes, repeats)
    return 0


def configuration_for(server: ApiServer) -> client.Configuration:
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.proxy = None
    return configuration


if __name__ == "__main__":
    sys.exit(main())
