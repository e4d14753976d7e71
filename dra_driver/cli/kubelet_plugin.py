"""``xpushare kubelet-plugin``: run the node plugin until SIGTERM (the DaemonSet's container command).

Every path is a flag so the same binary runs on a node, in the demo and in tests (temporary directories).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dra_driver.cli.common import add_metrics_address, stop_on_signals


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "kubelet-plugin", help="run the node plugin (kubelet registration, DRA gRPC, slices)"
    )
    add = parser.add_argument
    add("--node-name", default=os.environ.get("NODE_NAME", ""), help="this node's name (default $NODE_NAME)")
    add("--driver-name", default="xpushare.io")
    add("--registry-dir", type=Path, default=Path("/var/lib/kubelet/plugins_registry"))
    add("--plugin-dir", type=Path, default=None, help="default /var/lib/kubelet/plugins/<driver>")
    add("--cdi-dir", type=Path, default=Path("/var/run/cdi"))
    add("--state-dir", type=Path, default=Path("/var/lib/xpushare"), help="holds the checkpoint")
    add("--run-dir", type=Path, default=Path("/var/run/xpushare"),
        help="holds limits files, boards and claim ledgers")
    add("--boot-id-path", type=Path, default=Path("/proc/sys/kernel/random/boot_id"))
    add("--device-root", type=Path, default=Path("/"), help="host prefix of device nodes")
    add("--driver-root", type=Path, default=Path("/"), help="host prefix of the vendor driver's files")
    add("--driver-lookup-root", type=Path, default=None,
        help="where this process sees --driver-root (a read-only mount of the host's root); default: there")
    add("--shim-path", type=Path, default=None, help="host path of the shim library (LD_PRELOAD)")
    add("--nvidia-cdi-kind", default="auto",
        help="refer to NVIDIA's own CDI devices: auto (the toolkit's nvidia.com/gpu spec where the node "
             "has one), none, or a kind")
    add("--discovery-backend", default=os.environ.get("XPUSHARE_DISCOVERY_BACKEND", "auto"))
    add("--inventory", default=None, help="inventory file of the mock backend")
    add("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG") or None)
    add("--slice-mode", default="auto", choices=("auto", "consumable", "partitioned", "exclusive"))
    add(
        "--partition-layout",
        default="fixed",
        choices=("fixed", "menu"),
        help="partitioned mode: fixed disjoint pieces (places fast at any scale, no feature gate) or a "
        "menu of every size at every place on shared counters (small clusters)",
    )
    add(
        "--partitions",
        default="",
        help="per model prefix or device type, the fixed pieces or the menu's sizes, e.g. "
        "'gpu=4x1/4;ascend310p=4/7,2/7,1/7' (default: each vendor's)",
    )
    add("--no-publish", action="store_true", help="do not publish ResourceSlices")
    add("--health-interval", type=float, default=10.0, help="seconds between health checks")
    add("--max-parallel-claims", type=int, default=8)
    add(
        "--no-quota-annotation",
        action="store_true",
        help="ignore the xpushare.io/quota annotation of claims (no watch on ResourceClaims)",
    )
    add_metrics_address(add, 9464)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller.settings import PartitionLayout, SliceMode
    from dra_driver.core.telemetry import setup_tracing
    from dra_driver.core.vendors.nvidia.profile import nvml_library
    from kubeletplugin.plugin import Plugin
    from kubeletplugin.settings import PluginSettings

    options: dict[str, Any] = {"inventory": args.inventory} if args.inventory else {}
    if args.driver_lookup_root is not None and not os.environ.get("XPUSHARE_NVML_LIBRARY"):
        found = nvml_library(args.driver_lookup_root)  # NVML from the host's driver, wherever it is
        if found is not None:
            options["nvml_library"] = str(found)
    settings = PluginSettings(
        node_name=args.node_name,
        driver_name=args.driver_name,
        registry_dir=args.registry_dir,
        plugin_dir=args.plugin_dir,
        cdi_dir=args.cdi_dir,
        state_dir=args.state_dir,
        run_dir=args.run_dir,
        boot_id_path=args.boot_id_path,
        device_root=args.device_root,
        driver_root=args.driver_root,
        driver_lookup_root=args.driver_lookup_root,
        shim_path=args.shim_path,
        nvidia_cdi_kind=args.nvidia_cdi_kind,
        discovery_backend=args.discovery_backend,
        discovery_options=options,
        kubeconfig=args.kubeconfig,
        slice_mode=SliceMode(args.slice_mode),
        partition_layout=PartitionLayout(args.partition_layout),
        partitions=args.partitions,
        publish_slices=not args.no_publish,
        health_interval_s=args.health_interval,
        max_parallel_claims=args.max_parallel_claims,
        quota_annotations=not args.no_quota_annotation,
        metrics_address=args.metrics_address,
    )
    setup_tracing("xpushare-kubelet-plugin")
    plugin = Plugin(settings)
    stop_requested = stop_on_signals()
    try:
        plugin.start()
        while not stop_requested.wait(1.0):
            pass
    finally:
        plugin.stop()  # also after a failed start: no socket is left behind
    return 0
