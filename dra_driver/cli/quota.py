"""``xpushare quota --claim UID [--memory 8Gi] [--cores 30] [--priority low] [--policy fixed]``: change a
running claim's limits on the node.

Runs on the node (in the plugin's pod: ``kubectl exec``), where the plugin's checkpoint and the device
boards are. The new values are checked against what the claim was allocated (an error names the field
and its allowed range), then written to the claim's entry on each device's board, which every running
process of the claim copies within a second: memory at its next allocation (lowering below current usage
refuses new allocations until usage drops; nothing is killed), the compute share at its next launch
check. Priority may be lowered and raised back up to the allocated one; the policy may become fixed,
and guaranteed again where it was allocated guaranteed; both apply at the next launch check. The
claim's read-only limits file is rewritten for containers started later. Without a value to change,
the current quota is shown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kubeletplugin.paths import DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, NodePaths

_HELP = (__doc__ or "").replace("``", "")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("quota", description=_HELP,
                                   help="change or show a running claim's limits, share, priority, policy",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--claim", required=True, help="the ResourceClaim's UID")
    add("--memory", default=None, help="new memory limit per device (e.g. 8Gi, 512Mi, bytes)")
    add("--cores", type=int, default=None, help="new compute share per device, percent (0..allocated)")
    add("--priority", default=None, choices=["low", "normal", "high"],
        help="new priority per device (up to the allocated one)")
    add("--policy", default=None, choices=["guaranteed", "fixed"],
        help="new compute policy per device (guaranteed only where it was allocated)")
    add("--device", default=None, help="change one device of the claim only (name or UUID)")
    add("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="holds the plugin's checkpoint")
    add("--checkpoint-dir", type=Path, default=None, help="checkpoint directory (default STATE/checkpoint)")
    add("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="holds limits files, boards and claim ledgers")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kubeletplugin.quota import (
        QuotaRequest,
        apply_quota,
        parse_memory,
        parse_policy,
        parse_priority,
        show_quota,
    )

    paths = NodePaths(state_dir=args.state_dir, run_dir=args.run_dir, checkpoint=args.checkpoint_dir)
    request = QuotaRequest(
        memory_bytes=parse_memory(args.memory) if args.memory is not None else None,
        core_percent=args.cores,
        device=args.device,
        priority=parse_priority(args.priority) if args.priority is not None else None,
        policy=parse_policy(args.policy) if args.policy is not None else None,
    )
    quotas = show_quota(paths, args.claim) if request.empty() else apply_quota(paths, args.claim, request)
    print(f"{'device':<28}{'memory':>16}{'allocated':>16}{'used':>16}{'cores':>7}{'allocated':>11}"
          f"{'priority':>10}{'policy':>12}")
    for q in quotas:
        print(f"{q.device:<28}{q.memory_bytes:>16}{q.allocated_memory_bytes:>16}{q.used_bytes:>16}"
              f"{q.core_percent:>6}%{q.allocated_core_percent:>10}%{q.priority.value:>10}{q.policy.value:>12}")
    return 0
