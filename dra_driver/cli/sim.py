"""``xpushare sim apiserver``: run the embedded Kubernetes API server on its own.

It serves the kinds XPUShare uses (core Nodes, Pods, Events, Namespaces; resource.k8s.io/v1; Leases) on
127.0.0.1 and writes a kubeconfig, so that kubectl, the official client and the driver's own components
can run against a local "cluster" without one. It runs until interrupted (Ctrl-C or SIGTERM). The first
line on stdout is the server URL, for scripts that start it with port 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dra_driver.cli.common import stop_on_signals
from dra_driver.cli.extras import requires_sim_extra
from dra_driver.simulation.gates import GATES

if TYPE_CHECKING:
    from dra_driver.simulation.apiserver import ApiServer


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sim", help="local simulation of a cluster", description=__doc__)
    actions = parser.add_subparsers(dest="sim_action", metavar="ACTION", required=True)
    apiserver = actions.add_parser(
        "apiserver", help="run the embedded Kubernetes API server", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apiserver.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    apiserver.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free port)")
    apiserver.add_argument("--kubeconfig", type=Path, default=None,
                           help="write a kubeconfig for the server to this path")
    apiserver.add_argument("--disable-gate", dest="disabled_gates", action="append", default=[],
                           choices=sorted(GATES), metavar="NAME",
                           help="drop the fields of this feature gate on write, like an API server with the "
                                f"gate off (repeatable; one of {', '.join(sorted(GATES))})")
    apiserver.add_argument("--schemas", type=Path, default=None,
                           help="directory of the upstream Kubernetes OpenAPI v3 documents to validate "
                                "against (default $XPUSHARE_K8S_SCHEMAS; none: documents generated from the "
                                "kubernetes client models)")
    apiserver.add_argument("--tls", action="store_true",
                           help="serve HTTPS with a self-signed certificate (trusted by the kubeconfig)")
    apiserver.set_defaults(handler=run_apiserver)


def run_apiserver(args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    with requires_sim_extra("sim apiserver"):
        from dra_driver.simulation.apiserver import ApiServer
    with tempfile.TemporaryDirectory(prefix="xpushare-sim-tls-") as tls_dir:
        server = ApiServer(args.host, args.port, schema_dir=args.schemas, disabled_gates=args.disabled_gates,
                           tls_dir=Path(tls_dir) if args.tls else None)
        serve(server, args.kubeconfig, stop)
    return 0


def serve(server: ApiServer, kubeconfig: Path | None, stop: threading.Event) -> None:
    with server:
        print(server.url, flush=True)
        if kubeconfig is not None:
            path = server.write_kubeconfig(kubeconfig)
            print(f"kubeconfig written to {path}", flush=True)
        print(f"serving on {server.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        stop.wait()
