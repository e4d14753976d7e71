"""``xpushare status``: the devices of this node and what each claim on them uses, right now.

Runs on the node (in the plugin's pod: ``kubectl exec``) and reads only the node's files: the plugin's
checkpoint (which claims, what each was allocated), the live quota records, and each claim's ledger of
each device (memory used and peak, processes, device time charged, time throttled). MEASURED is the
device time charged to the claim over the sampling window, as a percent of the window, beside the SHARE
it asked for; THROTTLED the time its launches waited. No API server is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubeletplugin.paths import DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, NodePaths

_HELP = (__doc__ or "").replace("``", "")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="devices of this node and what each claim on them uses",
                                   description=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--window", type=float, default=2.0, help="seconds between the two reads that measure shares "
                                                 "(0: no measurement; default 2)")
    add("--watch", action="store_true", help="show it again after every window until interrupted")
    add("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    add("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="holds the plugin's checkpoint")
    add("--checkpoint-dir", type=Path, default=None, help="checkpoint directory (default STATE/checkpoint)")
    add("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="holds limits files, boards and claim ledgers")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from api.errors import ConfigError
    from kubeletplugin.status import as_json, node_status, render_table

    if not 0 <= args.window <= 3600:
        raise ConfigError(f"--window: {args.window} is outside 0..3600 seconds")
    if args.watch and args.window == 0:
        raise ConfigError("--watch: needs a --window above 0 seconds")
    paths = NodePaths(state_dir=args.state_dir, run_dir=args.run_dir, checkpoint=args.checkpoint_dir)
    while True:
        devices = node_status(paths, args.window)
        if args.output == "json":
            print(json.dumps(as_json(devices, args.window), sort_keys=True))
        else:
            print(render_table(devices))
        sys.stdout.flush()
        if not args.watch:
            return 0
        print()
