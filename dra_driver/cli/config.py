"""``xpushare config validate FILE``: check SharingConfigs before they reach a cluster.

It applies exactly the checks of admission and of the kubelet plugin (both decode through
``api.v1alpha1``), so a file that passes here is accepted there. FILE (YAML or JSON, ``-`` for stdin)
holds a bare SharingConfig, or DeviceClasses, ResourceClaims and ResourceClaimTemplates whose opaque
configs for the driver are checked; configs of other drivers are skipped. Several YAML documents may
follow one another. Problems go to stdout, one per line with the path inside the object, exit status 1.
A file that cannot be read gives one line on stderr saying why and where: not UTF-8, not YAML, or past
the limits of ``api.yamlfile`` (size, nesting, aliases that would multiply it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from api.errors import ConfigError, ConfigValidationError
from api.parsed import key_issues
from api.v1alpha1 import DRIVER_NAME, decode_object_configs, decode_parsed
from api.v1alpha1.opaque import CONFIG_LISTS
from api.yamlfile import load_documents

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
    validate.add_argument("--kubeconfig", default=None, metavar="PATH",
                          help="also ask this cluster whether it keeps the claims' capacity requests, and "
                               "warn about each request it would drop")
    validate.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    name = "stdin" if args.file == "-" else args.file
    documents = load_documents(_read(args.file, name), name)
    problems = [line for index, document in enumerate(documents)
                for line in validate_document(document, args.driver_name, index, len(documents))]
    if args.kubeconfig is not None:
        for warning in _cluster_warnings(documents, args.kubeconfig):
            print(warning)
    if problems:
        print("\n".join(problems))
        return 1
    print("valid")
    return 0


def _cluster_warnings(documents: list[Any], kubeconfig: str) -> list[str]:
    from dra_driver.cli.capacity_probe import dropped_request_warnings
    from dra_driver.core.kube import KubeApi, load_api_client

    with load_api_client(kubeconfig) as api_client:
        return dropped_request_warnings(documents, KubeApi(api_client))


def validate_document(document: Any, driver: str, index: int, count: int) -> list[str]:
    """Every problem in one document, one line each; lines name the document when the file holds several.

    Keys given twice or not strings are refused anywhere in the document, as kubectl and the API server
    refuse them; those inside our parameters are reported by the decoder too, so lines are deduplicated.
    """
    prefix = f"document {index + 1}: " if count > 1 else ""
    issues = key_issues(document)
    kind = document.get("kind") if isinstance(document, Mapping) else None
    try:
        if isinstance(kind, str) and kind in CONFIG_LISTS:
            decode_object_configs(document, driver)
        else:
            decode_parsed(document)
    except ConfigValidationError as err:
        issues.extend(err.issues)
    return [prefix + line for line in dict.fromkeys(str(issue) for issue in issues)]


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
