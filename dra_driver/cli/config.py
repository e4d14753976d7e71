"""``xpushare config validate FILE``: check SharingConfigs before they reach a cluster.

It applies exactly the checks of admission and of the kubelet plugin (both decode through
``api.v1alpha1``), so a file that passes here is accepted there. FILE (YAML or JSON, ``-`` for stdin)
holds a bare SharingConfig, or DeviceClasses, ResourceClaims and ResourceClaimTemplates whose opaque
configs for the driver are checked; configs of other drivers are skipped. Several YAML documents may
follow one another. Problems go to stdout, one per line with the path inside the object, exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from api.errors import ConfigError, ConfigValidationError
from api.v1alpha1 import DRIVER_NAME, decode_object_configs, decode_sharing_config
from api.v1alpha1.opaque import CONFIG_LISTS

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Larger files are refused before parsing: no config object comes anywhere near this."""


_HELP = (__doc__ or "").replace("``", "")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", help="check SharingConfig files", description=_HELP)
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    validate = actions.add_parser(
        "validate", help="validate a SharingConfig or the xpushare.io configs of claims and classes",
        description=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("file", help="YAML or JSON file, or - for stdin")
    validate.add_argument("--driver-name", default=DRIVER_NAME,
                          help=f"driver whose opaque configs are checked (default {DRIVER_NAME})")
    validate.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    name = "stdin" if args.file == "-" else args.file
    documents = load_documents(_read(args.file, name), name)
    problems = [line for index, document in enumerate(documents)
                for line in validate_document(document, args.driver_name, index, len(documents))]
    if problems:
        print("\n".join(problems))
        return 1
    print("valid")
    return 0


def validate_document(document: Any, driver: str, index: int, count: int) -> list[str]:
    """Every problem in one document, one line each; lines name the document when the file holds several."""
    prefix = f"document {index + 1}: " if count > 1 else ""
    try:
        if isinstance(document, Mapping) and document.get("kind") in CONFIG_LISTS:
            decode_object_configs(document, driver)
        else:
            decode_sharing_config(document if isinstance(document, Mapping) else _as_json(document))
    except ConfigValidationError as err:
        return [prefix + str(issue) for issue in err.issues]
    return []


def load_documents(text: str, name: str) -> list[Any]:
    """The non-empty YAML documents of ``text`` (JSON is YAML too); a parse error names line and column."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{name} is neither valid YAML nor JSON{where}: {problem}") from err
    except RecursionError as err:
        raise ConfigError(f"{name} is nested too deeply to be a config") from err
    if not documents:
        raise ConfigError(f"{name} holds no object to validate")
    return documents


def _read(file: str, name: str) -> str:
    try:
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1) if file == "-" else _read_file(Path(file))
    except OSError as err:
        raise ConfigError(f"read {name}: {err.strerror or err}") from err
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{name} is larger than {MAX_FILE_BYTES} bytes: not a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name} is not UTF-8 text (invalid byte at offset {err.start})") from err


def _read_file(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(MAX_FILE_BYTES + 1)


def _as_json(value: Any) -> str:
    # A document that is not an object (a list, a scalar) is handed over as JSON text so that the decoder
    # reports it as it reports any non-object parameters.
    return json.dumps(value, default=str)
