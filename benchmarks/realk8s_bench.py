"""The driver against a real Kubernetes v1.36 control plane, each figure beside the embedded server's.

Starts the control plane of ``../shared/k8s`` (etcd, kube-apiserver, kube-scheduler,
kube-controller-manager; no kubelet) and, in the same run, the embedded API server:

1. slice publish of 128 devices into an empty pool (``SlicePublisher``), every slice mode;
2. a no-change reconcile of 1,000 pools (one list of all pools + a diff per node, as the controller
   does; beside it the one-list-per-node baseline of publish_bench);
3. NodePrepareResources latency (p50/p90) and throughput for claims made from ResourceClaimTemplates and
   allocated by the real kube-scheduler (claims made by the real kube-controller-manager), prepared over
   the plugin's socket as the kubelet does; beside it the same through the embedded server and the
   scheduler stand-in (``dra_driver.simulation.scheduler``);
4. how fast the real kube-scheduler places pods against our slices: N nodes of 8 H100 (80Gi) GPUs, pods
   of 16Gi/25 % (a whole GPU each in exclusive mode), at the scheduler's default client QPS (50/100)
   and at QPS 1000, in each slice mode, in both partition layouts (fixed pieces, the default, and the
   menu on shared counters) and in alternative menus built here (the product's builder with other sizes,
   or with MIG-like placement counters added).

Each scheduling run gets a fresh control plane: pods and claims are created with the scheduler stopped
(kube-controller-manager restarted at QPS 1000 so that making 1,600 claims is not the bottleneck), then
kube-scheduler is started and timed until the last pod is bound.

    python benchmarks/realk8s_bench.py [--quick] [--nodes 50] [--parts publish,reconcile,prepare,schedule]

Without ``../shared/k8s`` beside the project it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402
from prepare_bench import inventory as npu_inventory  # noqa: E402
from publish_bench import configuration_for, median_ms, publisher  # noqa: E402
from publish_bench import devices as npu_devices  # noqa: E402
from upstream import use_upstream_schemas  # noqa: E402

from controller.deviceclasses import device_classes  # noqa: E402
from controller.publisher import KubeApi, list_pools  # noqa: E402
from controller.settings import PartitionLayout, SliceMode, SliceSettings  # noqa: E402
from controller.slices import build_slices  # noqa: E402
from dra_driver.core.devices import GIB, Device, DeviceType  # noqa: E402
from dra_driver.core.discovery.base import open_backend  # noqa: E402
from dra_driver.simulation.apiserver import ApiServer  # noqa: E402
from dra_driver.simulation.apiserver.handler import ApiHandler  # noqa: E402
from dra_driver.simulation.kubelet import ClaimRef, KubeletClient  # noqa: E402
from dra_driver.simulation.scheduler import SimScheduler  # noqa: E402
from kubeletplugin.plugin import Plugin  # noqa: E402
from tests.support.control_plane import (  # noqa: E402
    ABSENT,
    DRIVER,
    Cluster,
    available,
    component_argv,
    control_plane,
    create_node,
    install_device_classes,
    restart_component,
    start_component,
    stop_component,
    wait_for,
)
from tests.support.plugin_node import node_settings, prepare_node_root  # noqa: E402

MS = 1000.0
RAISED_QPS = 1000
BENCH_LABEL = {"xpushare.io/bench": "realk8s"}
# The documented selector for "at least 16Gi and 25 % of a GPU" (docs/configuration.md): what a claim
# asks for in partitioned mode, where devices are not shared by capacity.
AT_LEAST_16GI_25PCT = (
    'device.capacity["xpushare.io"].memory.compareTo(quantity("16Gi")) >= 0 && '
    'device.capacity["xpushare.io"].cores.compareTo(quantity("25")) >= 0'
)


def say(text: str = "") -> None:
    print(text, flush=True)


def embedded_server() -> ApiServer:
    # Go's net/http (a real API server) sends with TCP_NODELAY; without it the embedded server's split
    # header/body writes meet delayed ACKs and add 40 ms to every call (as publish_bench sets it).
    ApiHandler.disable_nagle_algorithm = True
    return ApiServer()


def parallel(action: Callable[[Any], object], items: Sequence[Any], threads: int = 8) -> None:
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(action, items):
            pass


def delete_all_slices(api: client.ApiClient) -> None:
    client.ResourceV1Api(api).delete_collection_resource_slice()


# --- 1. publish ---------------------------------------------------------------------------------------


def bench_publish(api_client: client.ApiClient, rounds: int) -> dict[SliceMode, float]:
    """Median ms to publish 128 NPUs into an empty pool, per mode (one warm-up publish first)."""
    api, inventory = KubeApi(api_client), npu_devices(128)
    publisher(api, "warm-up", SliceMode.CONSUMABLE).publish(inventory)
    figures = {}
    for mode in (SliceMode.CONSUMABLE, SliceMode.PARTITIONED, SliceMode.EXCLUSIVE):

        def once(n: int, mode: SliceMode = mode) -> object:
            return publisher(api, f"pub-{mode.value}-{n}", mode).publish(inventory)

        figures[mode] = median_ms(once, rounds)
    delete_all_slices(api_client)
    return figures


# --- 2. no-change reconcile -----------------------------------------------------------------------------


def bench_reconcile(api_client: client.ApiClient, pools: int, rounds: int) -> tuple[float, float]:
    """(one list + diff, one list per node): median ms of a no-change reconcile of ``pools`` pools."""
    api, inventory = KubeApi(api_client), npu_devices(8)
    publishers = [publisher(api, f"node-{i:04d}", SliceMode.CONSUMABLE) for i in range(pools)]
    parallel(lambda pub: pub.publish(inventory), publishers, threads=4)

    def one_list(_: int) -> None:
        stored = list_pools(api, DRIVER)
        writes = sum(
            pub.publish(inventory, stored=stored.get(pub.node_name, [])).writes for pub in publishers
        )
        assert writes == 0, writes

    def list_per_node(_: int) -> None:
        assert sum(pub.publish(inventory).writes for pub in publishers) == 0

    one_list(0)  # warm-up
    figures = median_ms(one_list, rounds), median_ms(list_per_node, rounds)
    delete_all_slices(api_client)
    return figures


# --- 3. NodePrepareResources ------------------------------------------------------------------------------


@dataclass
class PrepareFigures:
    p50_ms: list[float] = field(default_factory=list)
    p90_ms: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    placed_s: float = 0.0  # how long the scheduler took to place the pods (set-up, for information)


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def template_body(name: str, exactly: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": {"devices": {"requests": [{"name": "xpu", "exactly": exactly}]}}},
    }


def pod_body(name: str, template: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(BENCH_LABEL)},
        "spec": {
            "containers": [{"name": "main", "image": "busybox", "resources": {"claims": [{"name": "xpu"}]}}],
            "resourceClaims": [{"name": "xpu", "resourceClaimTemplateName": template}],
            # Hand-made Nodes keep their not-ready taint (no node lifecycle controller runs).
            "tolerations": [{"operator": "Exists"}],
        },
    }


def create_pods(api: client.ApiClient, namespace: str, template: str, count: int) -> None:
    core = client.CoreV1Api(api)
    parallel(lambda n: core.create_namespaced_pod(namespace, pod_body(f"p-{n:05d}", template)), range(count))  # type: ignore[arg-type]


def list_pods(api: client.ApiClient, namespace: str) -> tuple[list[dict[str, Any]], str]:
    """The namespace's pods as JSON (read raw: parsing thousands of models would cost seconds)."""
    response = client.CoreV1Api(api).list_namespaced_pod(namespace, _preload_content=False)
    body = json.loads(response.data)  # type: ignore[attr-defined]
    return body["items"], body["metadata"]["resourceVersion"]


def bound_claims(api: client.ApiClient, namespace: str) -> list[ClaimRef]:
    resource = client.ResourceV1Api(api)
    response = resource.list_namespaced_resource_claim(namespace, _preload_content=False)
    claims = json.loads(response.data)["items"]  # type: ignore[attr-defined]
    allocated = [c for c in claims if (c.get("status") or {}).get("allocation")]
    return [ClaimRef.of(c) for c in allocated]


def measure_prepare(
    kubelet: KubeletClient, claims: list[ClaimRef], rounds: int, threads: int
) -> PrepareFigures:
    """Per round: half the claims one by one (latency), the other half from ``threads`` callers, one
    claim per call (throughput), then all unprepared in one call."""
    half = len(claims) // 2
    sequential, concurrent = claims[:half], claims[half:]
    figures = PrepareFigures()

    def prepare(claim: ClaimRef) -> None:
        answer = kubelet.prepare([claim]).claims[claim.uid]
        if answer.error:
            raise RuntimeError(f"prepare {claim.namespace}/{claim.name}: {answer.error}")

    for _ in range(rounds):
        latencies = []
        for claim in sequential:
            started = time.perf_counter()
            prepare(claim)
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        parallel(prepare, concurrent, threads)
        figures.rate.append(len(concurrent) / (time.perf_counter() - started))
        figures.p50_ms.append(statistics.median(latencies) * MS)
        figures.p90_ms.append(percentile(latencies, 0.9) * MS)
        errors = [c.error for c in kubelet.unprepare(claims).claims.values() if c.error]
        if errors:
            raise RuntimeError(f"unprepare: {errors[0]}")
    return figures


@contextmanager
def prepare_node(api: client.ApiClient, node: str, claims: int) -> Iterator[KubeletClient]:
    """The plugin in this process (consumable slices of enough 64Gi NPUs for ``claims`` 2Gi claims),
    publishing to ``api``, and the kubelet's side registered with it."""
    root = Path(tempfile.mkdtemp(prefix="xps-bench-"))
    volatile = Path(
        tempfile.mkdtemp(prefix="xps-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    sockets = prepare_node_root(root)
    devices = claims // 32 + 2  # 2Gi claims: 32 of them fill a 64Gi NPU, half of its board's 64 slots
    inventory = npu_inventory(root / "inventory.yaml", devices)
    # As on a node: the checkpoint on disk; CDI specs, limits files, boards and ledgers on tmpfs.
    settings = node_settings(
        root, sockets, node, inventory, slice_mode=SliceMode.CONSUMABLE,
        cdi_dir=volatile / "cdi", run_dir=volatile / "run",
    )  # fmt: skip
    plugin = Plugin(settings, backend=open_backend("mock", inventory=str(inventory)), client=api)
    plugin.start()
    try:
        resource = client.ResourceV1Api(api)
        wait_for(
            "the plugin's slices",
            lambda: resource.list_resource_slice(field_selector=f"spec.nodeName={node}").items,
        )
        with KubeletClient(settings.registration_socket) as kubelet:
            kubelet.register()
            yield kubelet
    finally:
        plugin.stop()
        for path in (root, volatile, sockets):
            shutil.rmtree(path, ignore_errors=True)


PREPARE_TEMPLATE = {
    "deviceClassName": "npu.xpushare.io",
    "capacity": {"requests": {"memory": "2Gi", "cores": "1"}},
}


def prepare_real(cluster: Cluster, claims: int, rounds: int, threads: int) -> PrepareFigures:
    node, namespace = "prepare-node", "bench-prepare"
    install_device_classes(cluster)
    create_node(cluster, node, BENCH_LABEL, max_pods=claims + 10)
    cluster.core.create_namespace({"metadata": {"name": namespace}})  # type: ignore[arg-type]
    wait_for(
        "the default ServiceAccount", lambda: cluster.core.list_namespaced_service_account(namespace).items
    )
    with prepare_node(cluster.api, node, claims) as kubelet:
        cluster.resource.create_namespaced_resource_claim_template(
            namespace,
            template_body("xpu", PREPARE_TEMPLATE),  # type: ignore[arg-type]
        )
        started = time.monotonic()
        create_pods(cluster.api, namespace, "xpu", claims)

        def all_bound() -> bool:
            pods, _ = list_pods(cluster.api, namespace)
            return sum(bool(p["spec"].get("nodeName")) for p in pods) == claims

        wait_for(f"{claims} pods bound by kube-scheduler", all_bound, timeout_s=300, every_s=0.5)
        placed_s = time.monotonic() - started
        refs = bound_claims(cluster.api, namespace)
        assert len(refs) == claims, (len(refs), claims)
        figures = measure_prepare(kubelet, refs, rounds, threads)
    figures.placed_s = placed_s
    return figures


def prepare_embedded(claims: int, rounds: int, threads: int) -> PrepareFigures:
    node, namespace = "prepare-node", "default"
    with embedded_server() as server, server.client() as api:
        resource = client.ResourceV1Api(api)
        for device_class in device_classes(DRIVER):
            resource.create_device_class(device_class)  # type: ignore[arg-type]
        client.CoreV1Api(api).create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})  # type: ignore[arg-type]
        with prepare_node(api, node, claims) as kubelet:
            resource.create_namespaced_resource_claim_template(
                namespace,
                template_body("xpu", PREPARE_TEMPLATE),  # type: ignore[arg-type]
            )
            started = time.monotonic()
            create_pods(api, namespace, "xpu", claims)
            scheduler = SimScheduler(api)
            while True:
                scheduler.schedule_once()
                pods, _ = list_pods(api, namespace)
                if sum(bool(p["spec"].get("nodeName")) for p in pods) == claims:
                    break
                if time.monotonic() - started > 300:
                    raise AssertionError("the scheduler stand-in did not place every pod in 300 s")
            placed_s = time.monotonic() - started
            refs = bound_claims(api, namespace)
            assert len(refs) == claims, (len(refs), claims)
            figures = measure_prepare(kubelet, refs, rounds, threads)
    figures.placed_s = placed_s
    return figures


# --- 4. and 5. placement by the real kube-scheduler ---------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How one node's 8 GPUs are published, and what a pod of 16Gi/25 % asks for against it."""

    name: str
    note: str
    mode: SliceMode
    exactly: dict[str, Any]
    pods_per_gpu: int
    layout: PartitionLayout = PartitionLayout.FIXED  # partitioned mode: the product's two layouts
    sizes: tuple[Fraction, ...] = ()  # menu sizes of an alternative (empty: the product's defaults)
    placements: bool = False  # whether partitions also consume the memory slices of their place (as MIG)

    def slices(self, node: str, gpus: Sequence[Device]) -> list[dict[str, Any]]:
        settings = SliceSettings(mode=self.mode, partition_layout=self.layout)
        if self.sizes:
            settings = replace(settings, partition_profiles=MappingProxyType({"gpu": self.sizes}))
        if self.placements:
            return placed_partition_slices(node, gpus, settings)
        return build_slices(node, gpus, self.mode, settings, generation=1)


MEMORY_SLICES = 8
PARTITION_SUFFIX = re.compile(r"-(\d+)of(\d+)-(\d+)$")


def placed_partition_slices(
    node: str, gpus: Sequence[Device], settings: SliceSettings
) -> list[dict[str, Any]]:
    """The menu's partitions, each also consuming the memory slices of its place on the GPU (one
    counter of 1 per eighth), as NVIDIA's DRA driver publishes MIG placements (KEP 4815)."""
    settings = replace(settings, max_counter_sets_per_slice=2)  # 10 counters a set: stay under 32 a slice
    slices = build_slices(node, gpus, SliceMode.PARTITIONED, settings, generation=1)
    for resource_slice in slices:
        for counter_set in resource_slice["spec"].get("sharedCounters") or ():
            counter_set["counters"].update(
                {f"memory-slice-{i}": {"value": "1"} for i in range(MEMORY_SLICES)}
            )
        for device in resource_slice["spec"].get("devices") or ():
            found = PARTITION_SUFFIX.search(device["name"])
            numerator, denominator, number = map(int, found.groups()) if found else (1, 1, 0)
            width = MEMORY_SLICES * numerator // denominator
            used = range(number * width, (number + 1) * width)
            device["consumesCounters"][0]["counters"].update(
                {f"memory-slice-{i}": {"value": "1"} for i in used}
            )
    return slices


CAPACITY_16GI_25 = {
    "deviceClassName": "gpu.xpushare.io",
    "capacity": {"requests": {"memory": "16Gi", "cores": "25"}},
}
SELECTED_16GI_25 = {
    "deviceClassName": "gpu.xpushare.io",
    "selectors": [{"cel": {"expression": AT_LEAST_16GI_25PCT}}],
}
WHOLE_GPU = {"deviceClassName": "gpu.xpushare.io"}
QUARTER, HALF, WHOLE = Fraction(1, 4), Fraction(1, 2), Fraction(1)
MENU = PartitionLayout.MENU

LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("consumable", "product: one device per GPU shared by capacity (16Gi/25 requested)",
               SliceMode.CONSUMABLE, CAPACITY_16GI_25, 4),
        Layout("exclusive", "product: whole GPUs, one pod each", SliceMode.EXCLUSIVE, WHOLE_GPU, 1),
        Layout("partitioned", "product, fixed layout (default): 4 disjoint quarters per GPU, no counters",
               SliceMode.PARTITIONED, SELECTED_16GI_25, 4),
        Layout("menu", "product, menu layout: 1/8,1/4,1/2,1 = 15 overlapping partitions per GPU on counters",
               SliceMode.PARTITIONED, SELECTED_16GI_25, 4, MENU),
        Layout("mig-placed", "alt: the menu's 15 partitions, also on 8 memory-slice counters (as MIG)",
               SliceMode.PARTITIONED, SELECTED_16GI_25, 4, MENU, placements=True),
        Layout("menu-4-2-1", "alt: menu of 1/4,1/2,1 = 7 overlapping partitions per GPU on counters",
               SliceMode.PARTITIONED, SELECTED_16GI_25, 4, MENU, (QUARTER, HALF, WHOLE)),
        Layout("quarters-counted", "alt: menu of 1/4 only = 4 disjoint partitions per GPU on counters",
               SliceMode.PARTITIONED, SELECTED_16GI_25, 4, MENU, (QUARTER,)),
    )
}  # fmt: skip


def h100s(count: int) -> list[Device]:
    return [
        Device(
            type=DeviceType.GPU, vendor="nvidia", model="H100-SXM5-80GB", uuid=f"GPU-bench-{i}", index=i,
            memory_bytes=80 * GIB, cores=132, device_node=f"/dev/nvidia{i}", minor=i,
            pci_bus_id=f"0000:{i + 1:02x}:00.0", numa_node=i // 4, driver_version="550.54.15",
            runtime_version="12.4",
        )
        for i in range(count)
    ]  # fmt: skip


@dataclass
class Placement:
    layout: str
    qps: str
    total: int
    placed: int
    seconds: float  # scheduler started -> last pod bound (or the run's end when not all were)
    first_s: float  # scheduler started -> first pod bound
    rate: float  # pods/s between the first and the last binding
    pending: str = ""  # why a pod stayed pending, when one did


class BindWatcher:
    """Watches a namespace's pods and notes when each was first seen bound to a node.

    Watches of a few seconds each, resumed from the last resourceVersion: closing a response that
    another thread is reading blocks, so the watcher ends by itself after ``stop``."""

    WATCH_S = 2

    def __init__(self, cluster: Cluster, namespace: str, resource_version: str) -> None:
        self._api = cluster.new_client()
        self._namespace, self._rv = namespace, resource_version
        self.bound: dict[str, float] = {}
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        core = client.CoreV1Api(self._api)
        try:
            while not self._stopping.is_set():
                response: Any = core.list_namespaced_pod(
                    self._namespace, watch=True, resource_version=self._rv, timeout_seconds=self.WATCH_S,
                    _preload_content=False, _request_timeout=(10, self.WATCH_S + 10),
                )  # fmt: skip
                try:
                    for line in response:
                        if line.strip():
                            self._seen(json.loads(line))
                finally:
                    response.release_conn()
        except BaseException as err:
            self.error = err

    def _seen(self, event: dict[str, Any]) -> None:
        pod = event.get("object") or {}
        if event.get("type") == "ERROR":
            raise RuntimeError(f"pod watch: {pod.get('message')}")
        self._rv = pod["metadata"]["resourceVersion"]
        if event.get("type") in ("ADDED", "MODIFIED") and (pod.get("spec") or {}).get("nodeName"):
            self.bound.setdefault(pod["metadata"]["uid"], time.monotonic())

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self.WATCH_S + 15)
        self._api.close()  # type: ignore[no-untyped-call]
        if self.error is not None:
            raise RuntimeError(f"pod watch failed: {self.error}") from self.error


# Restarted components serve no HTTPS (nothing here reads their health): the port up.sh picked was free
# when it picked it, and another control plane on this machine may have taken it since.
NO_SERVING = ["--secure-port=0"]
KCM_FLAGS = [f"--kube-api-qps={RAISED_QPS}", f"--kube-api-burst={RAISED_QPS}", *NO_SERVING]


def run_placement(layout: Layout, nodes: int, qps: int | None, limit_s: float, stall_s: float) -> Placement:
    """One run on a fresh control plane: nodes, slices, pods and their claims first, with kube-scheduler
    stopped; then kube-scheduler started (at ``qps``, or its default) and timed."""
    with control_plane(f"sched-{layout.name}") as cluster:
        # Making the claims is kube-controller-manager's part (20 QPS by default): not what is measured.
        restart_component(cluster, "kube-controller-manager", KCM_FLAGS)
        scheduler_argv = component_argv(cluster, "kube-scheduler")
        stop_component(cluster, "kube-scheduler")
        install_device_classes(cluster)
        names = [f"n-{i:04d}" for i in range(nodes)]
        parallel(lambda name: create_node(cluster, name, BENCH_LABEL), names)
        gpus = h100s(8)
        slices = [s for name in names for s in layout.slices(name, gpus)]
        parallel(cluster.resource.create_resource_slice, slices)
        namespace = "bench"
        cluster.core.create_namespace({"metadata": {"name": namespace}})  # type: ignore[arg-type]
        wait_for(
            "the default ServiceAccount",
            lambda: cluster.core.list_namespaced_service_account(namespace).items,
        )
        cluster.resource.create_namespaced_resource_claim_template(
            namespace,
            template_body("xpu", layout.exactly),  # type: ignore[arg-type]
        )
        total = nodes * len(gpus) * layout.pods_per_gpu
        create_pods(cluster.api, namespace, "xpu", total)

        def claims_made() -> str | None:
            pods, rv = list_pods(cluster.api, namespace)
            made = sum(bool((p.get("status") or {}).get("resourceClaimStatuses")) for p in pods)
            return rv if made == total else None

        resource_version = wait_for(f"claims of {total} pods", claims_made, timeout_s=900, every_s=1.0)
        watcher = BindWatcher(cluster, namespace, resource_version)
        flags = [*NO_SERVING, *([] if qps is None else [f"--kube-api-qps={qps}", f"--kube-api-burst={qps}"])]
        started = time.monotonic()
        process = start_component(cluster, "kube-scheduler", [*scheduler_argv, *flags])
        try:
            seen, progress = 0, started
            while True:
                time.sleep(0.2)
                now, count = time.monotonic(), len(watcher.bound)
                if count != seen:
                    seen, progress = count, now
                if count >= total or now - started > limit_s or now - progress > stall_s:
                    break
                if watcher.error is not None:
                    break  # reported by stop()
                if process.poll() is not None:
                    log = (cluster.dir / "logs" / "kube-scheduler.log").read_text(errors="replace")
                    tail = "\n".join(log.splitlines()[-15:])
                    raise RuntimeError(f"kube-scheduler exited ({process.returncode}); its log ends:\n{tail}")
            ended = time.monotonic()
        finally:
            watcher.stop()
            stop_component(cluster, "kube-scheduler")
        times = sorted(watcher.bound.values())
        placed = len(times)
        pending = "" if placed == total else pending_reason(cluster, namespace)
        return Placement(
            layout=layout.name,
            qps="default" if qps is None else str(qps),
            total=total,
            placed=placed,
            seconds=(times[-1] if placed == total else ended) - started,
            first_s=(times[0] - started) if times else math.nan,
            rate=(placed - 1) / (times[-1] - times[0]) if placed > 1 and times[-1] > times[0] else math.nan,
            pending=pending,
        )


def pending_reason(cluster: Cluster, namespace: str) -> str:
    pods, _ = list_pods(cluster.api, namespace)
    for pod in pods:
        if pod["spec"].get("nodeName"):
            continue
        for condition in (pod.get("status") or {}).get("conditions") or ():
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return str(condition.get("message", ""))[:160]
        return "none tried yet (the scheduler was still working through its queue)"
    return ""


# --- report -------------------------------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


class Report:
    """Tables printed as each part ends, and all of them again at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        for line in lines:
            say(line)
            self.lines.append(line)

    def summary(self) -> None:
        say("\n==== summary ====")
        for line in self.lines:
            say(line)


def report_publish(
    report: Report, real: dict[SliceMode, float], embedded: dict[SliceMode, float], rounds: int
) -> None:
    report.add(
        f"\n1. publish 128 devices into an empty pool (SlicePublisher; median ms of {rounds} rounds)",
        f"  {'mode':<12} {'real kube-apiserver':>20} {'embedded':>10}",
        *(f"  {mode.value:<12} {real[mode]:>20.1f} {embedded[mode]:>10.1f}" for mode in real),
    )


def report_reconcile(
    report: Report, real: tuple[float, float], embedded: tuple[float, float], pools: int, rounds: int
) -> None:
    report.add(
        f"\n2. no-change reconcile of {pools} pools, 8 devices each (median ms of {rounds} rounds)",
        f"  {'':<34} {'real kube-apiserver':>20} {'embedded':>10}",
        f"  {'one list + diff (the controller)':<34} {real[0]:>20.1f} {embedded[0]:>10.1f}",
        f"  {'one list per node (baseline)':<34} {real[1]:>20.1f} {embedded[1]:>10.1f}",
    )


def report_prepare(report: Report, real: PrepareFigures, embedded: PrepareFigures, claims: int) -> None:
    rounds = len(real.rate)
    half = claims // 2

    def row(name: str, figures: PrepareFigures) -> str:
        return (
            f"  {name:<48} {med(figures.p50_ms):>7.2f} {med(figures.p90_ms):>7.2f} {med(figures.rate):>9.0f}"
            f" {figures.placed_s:>9.1f}"
        )

    report.add(
        f"\n3. NodePrepareResources over the plugin's socket, {claims} claims of 2Gi/1 % from templates "
        f"(median of {rounds} rounds: p50/p90 of {half} one-claim calls; claims/s from 4 callers "
        f"over {half})",
        f"  {'claims allocated by':<48} {'p50 ms':>7} {'p90 ms':>7} {'claims/s':>9} {'placed s':>9}",
        row("real kube-scheduler (+ kube-controller-manager)", real),
        row("embedded server + scheduler stand-in", embedded),
    )


def report_placement(report: Report, runs: dict[tuple[str, str], list[Placement]], nodes: int) -> None:
    report.add(
        f"\n4./5. kube-scheduler placing pods: {nodes} nodes x 8 H100 80Gi, pods of 16Gi/25 % "
        "(exclusive: a whole GPU each); medians of the rounds",
        f"  {'layout':<17} {'client QPS':>10} {'rounds':>6} {'placed':>12} {'seconds':>8} {'1st bind s':>10}"
        f" {'pods/s':>7}",
    )
    for (name, qps), placements in runs.items():
        placed = int(med([p.placed for p in placements]))
        total = placements[0].total
        report.add(
            f"  {name:<17} {qps:>10} {len(placements):>6} {f'{placed}/{total}':>12}"
            f" {med([p.seconds for p in placements]):>8.1f} {med([p.first_s for p in placements]):>10.1f}"
            f" {med([p.rate for p in placements]):>7.1f}"
        )
        for p in placements:
            if p.pending:
                report.add(f"    {name} at QPS {qps}: {p.placed}/{p.total}; pending: {p.pending}")
    names = {name for name, _ in runs}
    report.add(
        "  layouts:", *(f"    {lay.name:<17} {lay.note}" for lay in LAYOUTS.values() if lay.name in names)
    )


# --- main ---------------------------------------------------------------------------------------------------

PARTS = ("publish", "reconcile", "prepare", "schedule")
QUICK = ("consumable", "exclusive", "partitioned", "menu")


@dataclass
class Options:
    parts: set[str]
    layouts: list[str]
    rounds: int
    pools: int
    claims: int
    nodes: int
    qps: list[str]
    schedule_rounds: int
    limit_s: float
    stall_s: float


def options() -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds (a smoke run)")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument("--rounds", type=int, help="rounds of parts 1-3 (default 7, quick 3)")
    parser.add_argument("--pools", type=int, help="pools of the reconcile (default 1000, quick 100)")
    parser.add_argument("--claims", type=int, help="claims prepared (default 200, quick 40)")
    parser.add_argument("--nodes", type=int, help="nodes of 8 GPUs for the scheduler (default 50, quick 5)")
    parser.add_argument(
        "--layouts", help=f"subset of {','.join(LAYOUTS)} (default all; quick: {','.join(QUICK)})"
    )
    parser.add_argument("--qps", help="scheduler client QPS to run: 'default' and/or numbers "
                        f"(default: default,{RAISED_QPS}; quick: {RAISED_QPS})")  # fmt: skip
    parser.add_argument("--schedule-rounds", type=int, default=1, help="runs per layout and QPS (default 1)")
    parser.add_argument("--limit-s", type=float, default=300.0, help="longest a placement run may take")
    parser.add_argument("--stall-s", type=float, default=60.0, help="end a placement run after this long "
                        "without a binding")  # fmt: skip
    args = parser.parse_args()
    quick = bool(args.quick)
    chosen = Options(
        parts=set(args.parts.split(",")),
        layouts=(args.layouts or ",".join(QUICK if quick else LAYOUTS)).split(","),
        rounds=args.rounds or (3 if quick else 7),
        pools=args.pools or (100 if quick else 1000),
        claims=args.claims or (40 if quick else 200),
        nodes=args.nodes or (5 if quick else 50),
        qps=(args.qps or (str(RAISED_QPS) if quick else f"default,{RAISED_QPS}")).split(","),
        schedule_rounds=args.schedule_rounds,
        limit_s=args.limit_s,
        stall_s=args.stall_s,
    )
    unknown = chosen.parts - set(PARTS) | set(chosen.layouts) - set(LAYOUTS)
    if unknown:
        parser.error(f"unknown part or layout: {sorted(unknown)}")
    return chosen


class Parts:
    """Runs the parts; a part that fails is reported and the others still run."""

    def __init__(self, opts: Options, report: Report) -> None:
        self.opts, self.report = opts, report
        self.failed: list[str] = []

    def attempt(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as err:
            self.failed.append(what)
            self.report.add(f"\n{what}: FAILED: {type(err).__name__}: {err}")

    def servers(self) -> None:
        """Parts 1-3, on one control plane and the embedded server."""
        opts, report = self.opts, self.report
        with control_plane("bench") as cluster:
            with embedded_server() as server, client.ApiClient(configuration_for(server)) as embedded:
                if "publish" in opts.parts:
                    self.attempt("1. publish", lambda: report_publish(
                        report, bench_publish(cluster.api, opts.rounds), bench_publish(embedded, opts.rounds),
                        opts.rounds,
                    ))  # fmt: skip
                if "reconcile" in opts.parts:
                    self.attempt("2. reconcile", lambda: report_reconcile(
                        report, bench_reconcile(cluster.api, opts.pools, opts.rounds),
                        bench_reconcile(embedded, opts.pools, opts.rounds), opts.pools, opts.rounds,
                    ))  # fmt: skip
            if "prepare" in opts.parts:
                rounds = max(1, min(opts.rounds, 5))
                self.attempt("3. prepare", lambda: report_prepare(
                    report, prepare_real(cluster, opts.claims, rounds, threads=4),
                    prepare_embedded(opts.claims, rounds, threads=4), opts.claims,
                ))  # fmt: skip

    def placements(self) -> None:
        """Parts 4 and 5: a fresh control plane per run."""
        opts = self.opts
        runs: dict[tuple[str, str], list[Placement]] = {}

        def place(name: str, qps: str) -> None:
            placement = run_placement(
                LAYOUTS[name], opts.nodes, None if qps == "default" else int(qps), opts.limit_s, opts.stall_s
            )
            say(f"  ... {name} at QPS {placement.qps}: {placement.placed}/{placement.total} in "
                f"{placement.seconds:.1f} s")  # fmt: skip
            runs.setdefault((name, placement.qps), []).append(placement)

        for name in opts.layouts:
            for qps in opts.qps:
                for _ in range(opts.schedule_rounds):
                    self.attempt(f"4. placement of {name} at QPS {qps}", partial(place, name, qps))
        if runs:
            report_placement(self.report, runs, opts.nodes)


def main() -> int:
    opts = options()
    if not available():
        say(f"realk8s_bench: skipped: {ABSENT}")
        return 0
    logging.basicConfig(level=logging.WARNING)
    say(use_upstream_schemas())
    load = os.getloadavg()
    say(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    report = Report()
    parts = Parts(opts, report)
    if opts.parts & {"publish", "reconcile", "prepare"}:
        parts.servers()
    if "schedule" in opts.parts:
        parts.placements()
    load = os.getloadavg()
    report.add(
        f"\nmachine: {os.cpu_count()} CPUs, shared with other work; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at end"
    )
    report.summary()
    return 1 if parts.failed else 0


if __name__ == "__main__":
    sys.exit(main())
