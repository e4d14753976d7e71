"""The ``xpushare`` command: one argparse program whose subcommands live in sibling modules.

Each module listed in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its subcommand and
sets ``handler`` (a function taking the parsed namespace and returning an exit code). Command modules
keep their heavy imports inside their handlers, so ``xpushare --help`` stays fast and a component's
imports are paid only by the subcommand that runs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from api.errors import XPUShareError
from dra_driver import __version__
from dra_driver.core.telemetry import setup_logging

COMMAND_MODULES: tuple[str, ...] = (
    "dra_driver.cli.demo",
    "dra_driver.cli.config",
    "dra_driver.cli.schema",
    "dra_driver.cli.kubelet_plugin",
    "dra_driver.cli.controller",
    "dra_driver.cli.sim",
    "dra_driver.cli.quota",
    "dra_driver.cli.status",
    "dra_driver.cli.diagnose",
    "dra_driver.cli.remote_status",
    "dra_driver.cli.plan",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpushare",
        description="XPUShare: share Ascend NPUs and NVIDIA GPUs between pods with enforced limits.",
    )
    parser.add_argument("--version", action="version", version=f"xpushare {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    setup_logging(args.log_level, json_output=args.log_json)
    try:
        result: int = args.handler(args)
    except XPUShareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result
