"""``xpushare status``: the devices of this node and what each claim on them uses, right now.

Runs on the node (in the plugin's pod: ``kubectl exec``) and reads only the node's files: the plugin's
checkpoint (which claims, what each was allocated), the live quota records, each claim's ledger of each
device (memory used and peak, processes, device time charged, time throttled), and the plugin's usage
history. MEASURED is the device time charged to the claim over the last 10 s, as a percent, beside the
SHARE it asked for; THROTTLED the time its launches waited. Both come from the history the plugin keeps
(at once); when it cannot be used (the plugin not running, the file stale or damaged), or with
``--window``, from two reads of the ledgers that many seconds apart. No API server is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kubeletplugin.paths import DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, NodePaths

_HELP = (__doc__ or "").replace("``", "")
WATCH_EVERY_S = 2.0  # --watch's refresh when no --window sets it


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="devices of this node and what each claim on them uses",
                                   description=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--window", type=float, default=None,
        help="measure now, over two reads this many seconds apart, instead of the plugin's last 10 s "
             "(0: no reads and no wait, the history only; default: the history, else a 2 s window)")
    add("--watch", action="store_true", help="show it again every 2 s (or every --window) until interrupted")
    add("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    add("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="holds the plugin's checkpoint")
    add("--checkpoint-dir", type=Path, default=None, help="checkpoint directory (default STATE/checkpoint)")
    add("--run-dir", type=Path, default=DEFAULT_RUN_DIR,
        help="holds limits files, boards, claim ledgers and the usage history")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from api.errors import ConfigError
    from kubeletplugin.status import as_json, measurement_line, refresh, render_table

    if args.window is not None and not 0 <= args.window <= 3600:
        raise ConfigError(f"--window: {args.window} is outside 0..3600 seconds")
    paths = NodePaths(state_dir=args.state_dir, run_dir=args.run_dir, checkpoint=args.checkpoint_dir)
    while True:
        devices, measurement = refresh(paths, args.window)
        if args.output == "json":
            print(json.dumps(as_json(devices, measurement), sort_keys=True))
        else:
            print(measurement_line(measurement))
            print(render_table(devices))
        sys.stdout.flush()
        if not args.watch:
            return 0
        print()
        if measurement.window_s == 0:  # a window already took its time
            time.sleep(WATCH_EVERY_S)
