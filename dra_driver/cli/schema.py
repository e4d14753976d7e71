"""``xpushare schema``: print the JSON Schema of SharingConfig, generated from the model itself.

Editors and CI pipelines validate configs with it before they reach a cluster. The copy committed at
``deploy/schemas/sharingconfig.v1alpha1.schema.json`` is this command's output (a test keeps it current):

    xpushare schema > deploy/schemas/sharingconfig.v1alpha1.schema.json
"""

from __future__ import annotations

import argparse
import json

from api.v1alpha1 import json_schema

_HELP = (__doc__ or "").replace("``", "")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("schema", help="print the JSON Schema of SharingConfig",
                                   description=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=run_schema)


def render() -> str:
    """The schema as committed: two-space indents, a final newline."""
    return json.dumps(json_schema(), indent=2) + "\n"


def run_schema(_args: argparse.Namespace) -> int:
    print(render(), end="")
    return 0
