"""``xpushare diagnose``: what is wrong on this node's side of XPUShare, and what to do about it.

Runs on the node (in the plugin's pod: ``kubectl exec``) and reads the node's files, as ``xpushare
status`` does: the plugin's checkpoint, the limits files and CDI specs it wrote, the device boards and the
claim ledgers; and the accelerator stack below --host-root (driver, firmware, toolkit and framework
versions and whether they go together, each chip's health and device-share mode, MIG and persistence
modes, XID errors, the ASCEND_RT_VISIBLE_DEVICES numbering, where the logs are), with the devices the
discovery backend finds. With --kubeconfig or --in-cluster it also checks the node's registration with
the kubelet (its sockets) and what the API server holds about the node: its ResourceSlices, the
DeviceClasses, the claims allocated on it against those prepared, the unhealthy devices' taints; every
wait on the API server together is bounded by --api-timeout. Each finding names its subject (a claim, a
device, an object, a version), what is wrong and what to do. Nothing is changed. Exit code 1 when an
error was found, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from api.errors import XPUShareError
from kubeletplugin.paths import DEFAULT_CDI_DIR, DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, NodePaths

if TYPE_CHECKING:
    from kubeletplugin.findings import Finding
    from kubeletplugin.host_devices import Discovered

_HELP = (__doc__ or "").replace("``", "")
MAX_API_TIMEOUT_S = 600.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="find what is wrong on this node and how to fix it",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("-o", "--output", choices=("text", "json"), default="text", help="text (default) or json")
    add("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="holds the plugin's checkpoint")
    add("--checkpoint-dir", type=Path, default=None, help="checkpoint directory (default STATE/checkpoint)")
    add("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="holds limits files, boards and claim ledgers")
    add("--cdi-dir", type=Path, default=DEFAULT_CDI_DIR, help="where the plugin writes CDI specs")
    add(
        "--host-root",
        type=Path,
        default=Path("/"),
        help="where the host's root is seen (/host in the chart's plugin pod); default /",
    )
    add("--no-host", action="store_true", help="check only the plugin's files, not the accelerator stack")
    cluster = parser.add_argument_group("the cluster (checked only with --kubeconfig or --in-cluster)")
    source = cluster.add_mutually_exclusive_group()
    source.add_argument("--kubeconfig", type=Path, default=None, help="the API server of this kubeconfig")
    source.add_argument(
        "--in-cluster", action="store_true", help="the API server of this pod's service account"
    )
    cluster.add_argument(
        "--node",
        default=os.environ.get("NODE_NAME") or None,
        help="the node the plugin serves (default $NODE_NAME, else the pool of the prepared claims)",
    )
    cluster.add_argument(
        "--driver-name", default="xpushare.io", help="the plugin's driver (default xpushare.io)"
    )
    cluster.add_argument(
        "--registry-dir",
        type=Path,
        default=Path("/var/lib/kubelet/plugins_registry"),
        help="the kubelet's plugins_registry, where the registration socket is",
    )
    cluster.add_argument(
        "--plugin-dir",
        type=Path,
        default=None,
        help="where the DRA socket is (default /var/lib/kubelet/plugins/<driver>)",
    )
    cluster.add_argument(
        "--api-timeout",
        type=float,
        default=10.0,
        help="seconds diagnose waits on the API server in all (default 10)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kubeletplugin.diagnose import diagnose, render
    from kubeletplugin.findings import Severity, ordered
    from kubeletplugin.status import prepared_claims

    paths = NodePaths(
        state_dir=args.state_dir, run_dir=args.run_dir, checkpoint=args.checkpoint_dir, cdi_dir=args.cdi_dir
    )
    findings = diagnose(paths)
    discovered = None
    if not args.no_host:
        discovered, host = _host_findings(args.host_root)
        findings += host
    if args.kubeconfig is not None or args.in_cluster:
        findings += _cluster_findings(args, paths, discovered)
    findings = ordered(findings)
    if args.output == "json":
        print(json.dumps({"findings": [asdict(f) for f in findings]}, sort_keys=True))
    else:
        print(render(findings, len(prepared_claims(paths))))
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0


def _host_findings(root: Path) -> tuple[Discovered, list[Finding]]:
    """The host checks, with the devices the discovery backend finds (none where none answers)."""
    from kubeletplugin.host_checks import Host, check_host, installed_drivers
    from kubeletplugin.host_devices import discover

    environ = dict(os.environ)
    found = discover(environ, installed_drivers(root))
    host = Host(root=root, environ=environ, devices=found.devices, gpu_modes=found.gpu_modes())
    return found, [*found.findings, *check_host(host)]


def _cluster_findings(
    args: argparse.Namespace, paths: NodePaths, discovered: Discovered | None
) -> list[Finding]:
    """The registration sockets, then what the API server holds about the node."""
    from dra_driver.core.kube import load_api_client
    from kubeletplugin.cluster_checks import NodeView, check_cluster, served_node
    from kubeletplugin.cluster_reader import ClusterReader
    from kubeletplugin.findings import Finding, Severity
    from kubeletplugin.registration_checks import check_registration
    from kubeletplugin.settings import PluginSettings
    from kubeletplugin.status import prepared_claims

    prepared = prepared_claims(paths)
    node = args.node or served_node(prepared)
    if not node:
        return [
            Finding(
                Severity.ERROR,
                "cluster",
                "not checked: which node this is is not known",
                "give --node (in the plugin's pod $NODE_NAME says it)",
            )
        ]
    if not 0 < args.api_timeout <= MAX_API_TIMEOUT_S:
        return [
            Finding(
                Severity.ERROR,
                "cluster",
                f"not checked: --api-timeout {args.api_timeout:g} is outside 0..{MAX_API_TIMEOUT_S:g} s",
                "give a number of seconds in that range",
            )
        ]
    if args.in_cluster and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return [
            Finding(
                Severity.ERROR,
                "cluster",
                "--in-cluster: not in a pod ($KUBERNETES_SERVICE_HOST is not set)",
                "run diagnose in the plugin's pod (kubectl exec), or give --kubeconfig",
            )
        ]
    try:
        settings = PluginSettings(
            node_name=node,
            driver_name=args.driver_name,
            registry_dir=args.registry_dir,
            plugin_dir=args.plugin_dir,
        )
        found = check_registration(settings)
        api = load_api_client(None if args.in_cluster else str(args.kubeconfig), retries=0)
    except XPUShareError as err:
        return [Finding(Severity.ERROR, "cluster", f"not checked: {err}", "correct the flag it names")]
    devices = discovered.devices if discovered is not None and discovered.backend else None
    view = NodeView(node, args.driver_name, devices, prepared)
    with api:
        return [*found, *check_cluster(ClusterReader(api, args.api_timeout), view)]
