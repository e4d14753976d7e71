"""``xpushare diagnose``: what is wrong on this node's side of XPUShare, and what to do about it.

Runs on the node (in the plugin's pod: ``kubectl exec``) and reads only the node's files, as ``xpushare
status`` does: the plugin's checkpoint, the limits files and CDI specs it wrote, the device boards and the
claim ledgers. Each finding names its subject (a claim, a device, a checkpoint record), what is wrong and
what to do. Nothing is changed. Exit code 1 when an error was found, else 0.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from kubeletplugin.paths import DEFAULT_CDI_DIR, DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, NodePaths

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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kubeletplugin.diagnose import Severity, diagnose, render
    from kubeletplugin.status import prepared_claims

    paths = NodePaths(state_dir=args.state_dir, run_dir=args.run_dir, checkpoint=args.checkpoint_dir,
                      cdi_dir=args.cdi_dir)
    findings = diagnose(paths)
    if args.output == "json":
        print(json.dumps({"findings": [asdict(f) for f in findings]}, sort_keys=True))
    else:
        print(render(findings, len(prepared_claims(paths))))
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0
