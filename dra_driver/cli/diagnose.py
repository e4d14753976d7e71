"""``xpushare diagnose``: what is wrong on this node's side of XPUShare, and what to do about it.

Runs on the node (in the plugin's pod: ``kubectl exec``) and reads only the node's files, as ``xpushare
status`` does: the plugin's checkpoint, the limits files and CDI specs it wrote, the device boards and the
claim ledgers; and the accelerator stack below --host-root (driver, firmware, toolkit and framework
versions and whether they go together, device-share and MIG modes, persistence, XID errors, the
ASCEND_RT_VISIBLE_DEVICES numbering, where the logs are), with the devices the discovery backend finds.
Each finding names its subject (a claim, a device, a version), what is wrong and what to do. Nothing is
changed. Exit code 1 when an error was found, else 0.
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

_HELP = (__doc__ or "").replace("``", "")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("diagnose", help="find what is wrong on this node and how to fix it",
                                   description=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("-o", "--output", choices=("text", "json"), default="text", help="text (default) or json")
    add("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="holds the plugin's checkpoint")
    add("--checkpoint-dir", type=Path, default=None, help="checkpoint directory (default STATE/checkpoint)")
    add("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="holds limits files, boards and claim ledgers")
    add("--cdi-dir", type=Path, default=DEFAULT_CDI_DIR, help="where the plugin writes CDI specs")
    add("--host-root", type=Path, default=Path("/"),
        help="where the host's root is seen (/host in the chart's plugin pod); default /")
    add("--no-host", action="store_true", help="check only the plugin's files, not the accelerator stack")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kubeletplugin.diagnose import diagnose, render
    from kubeletplugin.findings import Severity, ordered
    from kubeletplugin.status import prepared_claims

    paths = NodePaths(state_dir=args.state_dir, run_dir=args.run_dir, checkpoint=args.checkpoint_dir,
                      cdi_dir=args.cdi_dir)
    findings = diagnose(paths)
    if not args.no_host:
        findings = ordered([*findings, *_host_findings(args.host_root)])
    if args.output == "json":
        print(json.dumps({"findings": [asdict(f) for f in findings]}, sort_keys=True))
    else:
        print(render(findings, len(prepared_claims(paths))))
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0


def _host_findings(root: Path) -> list[Finding]:
    """The host checks, with the devices the discovery backend finds (none where none answers)."""
    from dra_driver.core.discovery.base import backend_from_settings
    from kubeletplugin.findings import Finding, Severity
    from kubeletplugin.host_checks import Host, check_host

    found: list[Finding] = []
    try:
        backend = backend_from_settings({})
    except XPUShareError as err:
        found.append(Finding(Severity.INFO, "discovery", f"no backend answered: {err}", "-"))
        return [*found, *check_host(Host(root=root, environ=dict(os.environ)))]
    try:
        devices = backend.discover()
        modes = getattr(backend, "modes", None)
        found.append(Finding(Severity.INFO, "discovery", f"{backend.name}: {len(devices)} device(s)", "-"))
        return [*found, *check_host(Host(root=root, environ=dict(os.environ), devices=devices,
                                         gpu_modes=modes))]
    except XPUShareError as err:
        found.append(Finding(Severity.ERROR, "discovery", f"{backend.name}: {err}",
                             "the driver does not answer: check it with nvidia-smi or npu-smi"))
        return [*found, *check_host(Host(root=root, environ=dict(os.environ)))]
    finally:
        backend.close()
