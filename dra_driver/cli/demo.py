"""``xpushare demo``: the local end-to-end walk-through on simulated devices (steps in
``dra_driver.simulation.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dra_driver.cli.extras import requires_sim_extra

DEMO_MODES = ("consumable", "partitioned", "exclusive")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("demo", help="run the local end-to-end demo on simulated devices")
    parser.add_argument("--inventory", type=Path, default=None,
                        help="mock inventory file (default: the packaged inventory)")
    parser.add_argument("--mode", choices=DEMO_MODES, default="consumable",
                        help="slice mode to show (default consumable)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with requires_sim_extra("demo"):
        from dra_driver.simulation.demo import run_demo
    return run_demo(args)
