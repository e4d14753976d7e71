"""Benchmark of the embedded API server, side by side with baselines measured in the same run.

Targets (from the Local Kubernetes issue): at least 1,000 GETs per second, and a list of 1,000
ResourceSlices in under 200 ms, on a 2-core machine.

The server runs as its own process (``xpushare sim apiserver``), as the demo runs it, so the client's
work does not share its interpreter. Baselines:

- GET: a bare stdlib ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, also its own process) answering the
  same slice as a static JSON body: the floor for any stdlib-based server on this machine.
- list: a direct read of 1,000 slices from an in-memory ``Store`` (snapshot plus joining the cached JSON),
  i.e. the work left once HTTP is taken away.

Each figure is the median of several rounds. The official client's numbers (which add its own model
deserialization) are printed for information. Run: ``.venv/bin/python benchmarks/apiserver_bench.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client
from upstream import use_upstream_schemas

from dra_driver.simulation.apiserver.store import Store

SLICES = "/apis/resource.k8s.io/v1/resourceslices"
GET_TARGET = 1000.0
LIST_TARGET_MS = 200.0


def make_slice(index: int, devices: int = 4) -> dict[str, Any]:
    node = f"node-{index // 8}"
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-xpushare.io-{index}", "labels": {"xpushare.io/node": node}},
        "spec": {
            "driver": "xpushare.io",
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": [{
                "name": f"npu-{d}",
                "allowMultipleAllocations": True,
                "attributes": {
                    "xpushare.io/type": {"string": "npu"}, "xpushare.io/model": {"string": "Ascend910B3"},
                    "xpushare.io/index": {"int": d}, "xpushare.io/driverVersion": {"version": "25.5.0"},
                },
                "capacity": {
                    "memory": {"value": "64Gi", "requestPolicy": {
                        "default": "64Gi", "validRange": {"min": "256Mi", "step": "256Mi"}}},
                    "cores": {"value": "100", "requestPolicy": {
                        "default": "0", "validRange": {"min": "0", "step": "1"}}},
                },
            } for d in range(devices)],
        },
    }


class Connection:
    """One keep-alive HTTP/1.1 connection with TCP_NODELAY, as client-go and urllib3 open them."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.connect()
        assert self.conn.sock is not None
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def _static_server(body: bytes, ports: Any) -> None:
    class Static(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Static)
    server.daemon_threads = True
    ports.put(server.server_address[1])
    server.serve_forever()


def rate(call: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - start)


def latency_ms(call: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def median_rate(call: Callable[[], object], count: int, rounds: int) -> float:
    return statistics.median(rate(call, count) for _ in range(rounds))


def start_sim() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-m", "dra_driver", "--log-level", "WARNING", "sim",
                                "apiserver"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    return process, int(url.rsplit(":", 1)[1])


def populate(conn: Connection, count: int) -> list[float]:
    """Create ``count`` slices; return per-create latencies (ms), which include schema validation."""
    latencies = []
    for index in range(count):
        body = json.dumps(make_slice(index)).encode()
        start = time.perf_counter()
        status, answer = conn.call("POST", SLICES, body)
        latencies.append((time.perf_counter() - start) * 1000)
        if status != 201:
            raise SystemExit(f"create failed: {status} {answer[:300]!r}")
    return latencies


def in_memory_list(count: int) -> Callable[[], bytes]:
    store = Store()
    for index in range(count):
        obj = make_slice(index)
        obj["metadata"]["uid"] = str(index)
        store.create("resourceslices.resource.k8s.io", ("", obj["metadata"]["name"]), obj)

    def read() -> bytes:
        entries, _ = store.snapshot("resourceslices.resource.k8s.io")
        return b'{"items":[' + b",".join(e.raw for e in entries) + b"]}"

    return read


Row = tuple[str, str, str, str, bool]


def measure_raw(args: argparse.Namespace, port: int) -> list[Row]:
    """GET and list over raw keep-alive HTTP, each beside its baseline."""
    conn = Connection(port)
    creates = populate(conn, args.slices)
    one = f"{SLICES}/{make_slice(0)['metadata']['name']}"
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    baseline = ctx.Process(target=_static_server, args=(conn.call("GET", one)[1], ports), daemon=True)
    baseline.start()
    try:
        static = Connection(ports.get(timeout=30))
        get_sim = median_rate(lambda: conn.call("GET", one), args.gets, args.rounds)
        get_static = median_rate(lambda: static.call("GET", "/"), args.gets, args.rounds)
    finally:
        baseline.terminate()
    list_sim = latency_ms(lambda: conn.call("GET", SLICES), args.rounds * 3)
    list_mem = latency_ms(in_memory_list(args.slices), args.rounds * 3)
    return [
        ("GET one ResourceSlice (req/s)", f"{get_sim:,.0f}", f"{get_static:,.0f} (stdlib static JSON)",
         f">= {GET_TARGET:,.0f}", get_sim >= GET_TARGET),
        (f"list {args.slices} ResourceSlices (ms)", f"{list_sim:.1f}",
         f"{list_mem:.1f} (in-memory store read)", f"< {LIST_TARGET_MS:.0f}", list_sim < LIST_TARGET_MS),
        ("create ResourceSlice, validated (ms)", f"{statistics.median(creates):.2f}", "-", "-", True),
    ]


def measure_typed(args: argparse.Namespace, port: int) -> list[Row]:
    """The same reads through the official client, which adds its model deserialization."""
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    with client.ApiClient(configuration) as api:
        typed = client.ResourceV1Api(api)
        name = make_slice(0)["metadata"]["name"]
        get_typed = median_rate(lambda: typed.read_resource_slice(name), args.gets // 4, args.rounds)
        list_typed = latency_ms(typed.list_resource_slice, 3)
    return [
        ("GET via official client (req/s)", f"{get_typed:,.0f}", "-", "-", True),
        (f"list {args.slices} via official client (ms)", f"{list_typed:.0f}", "-", "-", True),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=2000, help="GETs per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(use_upstream_schemas())
    sim, port = start_sim()
    try:
        rows = measure_raw(args, port) + measure_typed(args, port)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print(f"{'benchmark (medians)':<42} {'xpushare sim':>14}  {'baseline':<34} {'target':<9} ok")
    for what, ours, base, target, ok in rows:
        print(f"{what:<42} {ours:>14}  {base:<34} {target:<9} {'yes' if ok else 'NO'}")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
