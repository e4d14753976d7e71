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
    add("--window", type=float, default=1.0, help="seconds between the two reads (0: one read, no rates)")
    add("-o", "--output", choices=("table", "json"), default="table")
    add("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG") or None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dra_driver.core.kube import load_api_client
    from kubeletplugin.remote_status import node_rows, render

    kubeconfig = str(args.kubeconfig) if args.kubeconfig else None
    rows = node_rows(load_api_client(kubeconfig), args.node, args.namespace, port=args.port,
                     window_s=args.window)
    if args.output == "json":
        print(json.dumps({"node": args.node, "claims": [asdict(r) for r in rows]}, sort_keys=True))
    else:
        print(render(rows) if rows else f"no prepared claims on {args.node}")
    return 0
