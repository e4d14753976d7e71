"""``xpushare controller``: run the cluster controller until SIGTERM (the Deployment's container command).

Leader election decides which replica installs DeviceClasses and collects pools of deleted nodes;
every replica serves the admission webhook when a certificate is given.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

from dra_driver.cli.common import add_metrics_address, stop_on_signals


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "controller", help="run the cluster controller (DeviceClasses, pool GC, admission webhook)"
    )
    add = parser.add_argument
    add("--kubeconfig", default=os.environ.get("KUBECONFIG") or None)
    add("--driver-name", default="xpushare.io")
    add(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "xpushare-system"),
        help="namespace of the Lease",
    )
    add(
        "--identity",
        default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="leader election identity",
    )
    add("--lease-name", default="xpushare-controller")
    add("--lease-duration", type=float, default=15.0, help="seconds (default 15)")
    add("--renew-deadline", type=float, default=10.0, help="seconds (default 10)")
    add("--retry-period", type=float, default=2.0, help="seconds (default 2)")
    add("--resync", type=float, default=30.0, help="seconds between controller passes (default 30)")
    add("--webhook-port", type=int, default=8443)
    add("--tls-cert-file", type=Path, default=None, help="webhook certificate; no webhook without it")
    add("--tls-key-file", type=Path, default=None)
    add_metrics_address(add, 9465)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.admission import WebhookServer
    from controller.cluster import ClusterController, ControllerSettings
    from controller.settings import LeaderSettings
    from dra_driver.core.kube import KubeApi, load_api_client
    from dra_driver.core.metrics import default_registry
    from dra_driver.core.metrics_server import MetricsServer, parse_address
    from dra_driver.core.telemetry import setup_tracing

    settings = ControllerSettings(
        driver_name=args.driver_name,
        identity=args.identity,
        resync_seconds=args.resync,
        leader=LeaderSettings(
            namespace=args.namespace,
            lease_name=args.lease_name,
            lease_duration_seconds=args.lease_duration,
            renew_deadline_seconds=args.renew_deadline,
            retry_period_seconds=args.retry_period,
        ),
    )
    metrics_address = parse_address(args.metrics_address)
    setup_tracing("xpushare-controller")
    stop = stop_on_signals()
    webhook = metrics = None
    try:
        if metrics_address is not None:
            metrics = MetricsServer(default_registry(), metrics_address).start()
        if args.tls_cert_file is not None:
            key_file = args.tls_key_file or args.tls_cert_file
            webhook = WebhookServer(args.tls_cert_file, key_file, args.driver_name, port=args.webhook_port)
            webhook.start()
        with load_api_client(args.kubeconfig) as api_client:
            ClusterController(KubeApi(api_client), settings).run(stop)
    finally:
        for server in (webhook, metrics):
            if server is not None:
                server.stop()
    return 0
