"""``xpushare remote-status NODE`` (also ``kubectl xpushare status NODE``): a node's claims from a
workstation, through the API server's proxy to the node plugin's metrics; no shell on the node."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("remote-status", help="a node's claims through the API server",
                                   description=__doc__)
    add = parser.add_argument
    add("node", help="the node's name")
    add("-n", "--namespace", default="xpushare-system", help="where the chart is installed")
    add("--port", type=int, default=9464, help="the plugin's metrics port (chart: kubeletPlugin.metricsPort)")
    add("--window", type=float, default=None,
        help="measure over two reads this many seconds apart (default: the plugin's last 10 s from one "
             "read; 0: one read, no shares from a plugin without usage history)")
    add("-o", "--output", choices=("table", "json"), default="table")
    add("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG") or None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dra_driver.core.kube import load_api_client
    from kubeletplugin.remote_status import measured_line, node_rows, render

    kubeconfig = str(args.kubeconfig) if args.kubeconfig else None
    rows, window_s = node_rows(load_api_client(kubeconfig), args.node, args.namespace, port=args.port,
                               window_s=args.window)
    if args.output == "json":
        print(json.dumps({"node": args.node, "windowSeconds": window_s, "claims": [asdict(r) for r in rows]},
                         sort_keys=True))
    elif rows:
        print(render(rows))
        print(measured_line(rows, window_s))
    else:
        print(f"no prepared claims on {args.node}")
    return 0
