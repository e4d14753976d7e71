"""NodePrepareResources latency and throughput against the embedded API server, beside a baseline.

The plugin runs in this process with the mock discovery backend, behind its real DRA unix socket, and the
benchmark calls it over gRPC as the kubelet does. Claims carry consumable-mode allocations written
directly (the scheduler stand-in is not what is measured). The baseline is a bare GET of the same claim
through the official client, the one API call every prepare makes, measured in the same run.

Targets (DESIGN.md section 11): p50 < 5 ms and p99 < 20 ms per claim; >= 200 claims/s.

    python benchmarks/prepare_bench.py [--claims 400] [--threads 4]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import yaml
from kubernetes import client
from upstream import use_upstream_schemas

from api.kubelet import dra_v1_grpc, dra_v1_pb2
from dra_driver.core.discovery.base import open_backend
from dra_driver.simulation.apiserver import ApiServer
from kubeletplugin.plugin import Plugin
from kubeletplugin.settings import PluginSettings

NODE = "bench-node"
NS = "default"
ROOT = Path(__file__).resolve().parents[1]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def sim_client(server: ApiServer) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.proxy = None
    configuration.api_key = {"authorization": "Bearer xpushare-sim"}
    return client.ApiClient(configuration)


def inventory(path: Path, devices: int) -> Path:
    """``devices`` NPUs of 64 GiB each."""
    template = yaml.safe_load((ROOT / "dra_driver/core/discovery/inventory/default.yaml").read_text())
    npu = next(d for d in template["devices"] if d["type"] == "npu")
    template["devices"] = [
        {
            **npu,
            "index": i,
            "minor": i,
            "uuid": f"BENCH-NPU-{i}",
            "deviceNode": f"/dev/davinci{i}",
            "pciBusID": f"0000:{i + 1:02x}:00.0",
        }
        for i in range(devices)
    ]
    path.write_text(yaml.safe_dump(template))
    return path


def make_claims(api: client.ApiClient, count: int, devices: int) -> list[dict[str, Any]]:
    resource = client.ResourceV1Api(api)
    claims = []
    for n in range(count):
        body = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": f"bench-{n}", "namespace": NS},
            "spec": {
                "devices": {"requests": [{"name": "npu", "exactly": {"deviceClassName": "npu.xpushare.io"}}]}
            },
        }
        created = api.sanitize_for_serialization(resource.create_namespaced_resource_claim(NS, body))
        created["status"] = {
            "allocation": {
                "devices": {
                    "results": [
                        {
                            "request": "npu",
                            "driver": "xpushare.io",
                            "pool": NODE,
                            "device": f"npu-{n % devices}",
                            "shareID": str(uuid.uuid4()),
                            "consumedCapacity": {"memory": "256Mi", "cores": "0"},
                        }
                    ]
                }
            },
            "reservedFor": [{"resource": "pods", "name": f"bench-{n}", "uid": str(uuid.uuid4())}],
        }
        try:
            updated = resource.replace_namespaced_resource_claim_status(f"bench-{n}", NS, created)
        except client.ApiException as err:
            if err.status != 404:
                raise
            updated = resource.replace_namespaced_resource_claim(f"bench-{n}", NS, created)
        claims.append(api.sanitize_for_serialization(updated))
    return claims


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def prepare_one(stub: dra_v1_grpc.DRAPluginStub, claim: dict[str, Any]) -> None:
    meta = claim["metadata"]
    request = dra_v1_pb2.NodePrepareResourcesRequest(
        claims=[dra_v1_pb2.Claim(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])]
    )
    response = stub.NodePrepareResources(request, timeout=45)
    error = response.claims[meta["uid"]].error
    if error:
        raise RuntimeError(error)


def unprepare_all(stub: dra_v1_grpc.DRAPluginStub, claims: list[dict[str, Any]]) -> None:
    request = dra_v1_pb2.NodeUnprepareResourcesRequest(
        claims=[
            dra_v1_pb2.Claim(namespace=NS, name=c["metadata"]["name"], uid=c["metadata"]["uid"])
            for c in claims
        ]
    )
    response = stub.NodeUnprepareResources(request, timeout=45)
    errors = [c.error for c in response.claims.values() if c.error]
    if errors:
        raise RuntimeError(errors[0])


def throughput(stub: dra_v1_grpc.DRAPluginStub, claims: list[dict[str, Any]], threads: int) -> float:
    """Claims per second with ``threads`` callers, one claim per call (as pods start independently)."""
    chunks = [claims[n::threads] for n in range(threads)]
    failures: list[BaseException] = []

    def run(chunk: list[dict[str, Any]]) -> None:
        try:
            for claim in chunk:
                prepare_one(stub, claim)
        except BaseException as err:  # reported after the join
            failures.append(err)

    workers = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return len(claims) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", type=int, default=400, help="claims per phase (latency, then throughput)")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    print(use_upstream_schemas())
    logging.basicConfig(level=logging.WARNING)
    devices = max(2, (2 * args.claims) // 48 + 1)  # a device's board holds at most 64 claims
    work = Path(tempfile.mkdtemp(prefix="xps-bench-"))
    # As on a node: the checkpoint on disk, CDI specs, limits files, boards and ledgers on tmpfs (/var/run).
    volatile = Path(
        tempfile.mkdtemp(prefix="xps-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    try:
        with ApiServer() as server:
            return run(server, work, volatile, args, devices)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(volatile, ignore_errors=True)


def run(server: ApiServer, work: Path, volatile: Path, args: argparse.Namespace, devices: int) -> int:
    (work / "boot_id").write_text("bench\n")
    settings = PluginSettings(
        node_name=NODE,
        registry_dir=work / "reg",
        plugin_dir=work / "plugin",
        cdi_dir=volatile / "cdi",
        state_dir=work / "state",
        run_dir=volatile / "run",
        boot_id_path=work / "boot_id",
        device_root=work,
        driver_root=work,
        discovery_backend="mock",
        discovery_options={"inventory": str(inventory(work / "inventory.yaml", devices))},
        publish_slices=False,
    )
    api = sim_client(server)
    plugin = Plugin(
        settings,
        backend=open_backend("mock", inventory=settings.discovery_options["inventory"]),
        client=sim_client(server),
    )
    plugin.start()
    try:
        claims = make_claims(api, 2 * args.claims, devices)
        latency_set, throughput_set = claims[: args.claims], claims[args.claims :]
        resource = client.ResourceV1Api(api)
        baseline = [
            timed(
                lambda c=c: (
                    resource.read_namespaced_resource_claim(
                        c["metadata"]["name"], NS, _preload_content=False
                    ).data
                )
            )
            for c in latency_set
        ]
        with grpc.insecure_channel(f"unix://{settings.dra_socket}") as channel:
            stub = dra_v1_grpc.DRAPluginStub(channel)
            latencies = [timed(lambda c=c: prepare_one(stub, c)) for c in latency_set]
            rate = throughput(stub, throughput_set, args.threads)
            unprepare_s = timed(lambda: unprepare_all(stub, claims))
    finally:
        plugin.stop()
    return report(baseline, latencies, rate, unprepare_s, len(claims))


def report(baseline: list[float], latencies: list[float], rate: float, unprepare_s: float, total: int) -> int:
    ms = 1000.0
    p50, p99 = statistics.median(latencies) * ms, percentile(latencies, 0.99) * ms
    print(f"{'':34}{'p50 ms':>10}{'p99 ms':>10}")
    print(
        f"{'baseline: GET claim (client)':34}{statistics.median(baseline) * ms:10.2f}"
        f"{percentile(baseline, 0.99) * ms:10.2f}"
    )
    print(f"{'NodePrepareResources, 1 claim':34}{p50:10.2f}{p99:10.2f}")
    print(
        f"throughput: {rate:.0f} claims/s prepared; "
        f"unprepare of {total} claims in one call: {unprepare_s:.2f} s"
    )
    checks = {"p50 < 5 ms": p50 < 5, "p99 < 20 ms": p99 < 20, ">= 200 claims/s": rate >= 200}
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
