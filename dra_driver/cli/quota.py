"""``xpushare quota --claim UID [--memory 8Gi] [--cores 30]``: change a running claim's limits on the node.

Runs on the node (in the plugin's pod: ``kubectl exec``), where the plugin's checkpoint and the device
boards are. The new values are checked against what the claim was allocated (an error names the field
and its allowed range), then written to the claim's entry on each device's board, which every running
process of the claim copies within a second: memory at its next allocation (lowering below current usage
refuses new allocations until usage drops; nothing is killed), the compute share at its next launch
check. The
claim's read-only limits file is rewritten for containers started later. Without --memory or --cores,
the current quota is shown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kubeletplugin.paths import DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, NodePaths

_HELP = (__doc__ or "").replace("``", "")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("quota", help="change or show a running claim's memory limit and share",
                                   description=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--claim", required=True, help="the ResourceClaim's UID")
    add("--memory", default=None, help="new memory limit per device (e.g. 8Gi, 512Mi, bytes)")
    add("--cores", type=int, default=None, help="new compute share per device, percent (0..allocated)")
    add("--device", default=None, help="change one device of the claim only (name or UUID)")
    add("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="holds the plugin's checkpoint")
    add("--checkpoint-dir", type=Path, default=None, help="checkpoint directory (default STATE/checkpoint)")
    add("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="holds limits files, boards and claim ledgers")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kubeletplugin.quota import QuotaRequest, apply_quota, parse_memory, show_quota

    paths = NodePaths(state_dir=args.state_dir, run_dir=args.run_dir, checkpoint=args.checkpoint_dir)
    if args.memory is None and args.cores is None:
        quotas = show_quota(paths, args.claim)
    else:
        memory = parse_memory(args.memory) if args.memory is not None else None
        quotas = apply_quota(paths, args.claim, QuotaRequest(memory, args.cores, args.device))
    print(f"{'device':<28}{'memory':>16}{'allocated':>16}{'used':>16}{'cores':>7}{'allocated':>11}")
    for q in quotas:
        print(f"{q.device:<28}{q.memory_bytes:>16}{q.allocated_memory_bytes:>16}{q.used_bytes:>16}"
              f"{q.core_percent:>6}%{q.allocated_core_percent:>10}%")
    return 0
