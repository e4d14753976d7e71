"""Reading cluster dumps (``kubectl get ... -o yaml|json``) for ``xpushare plan -f``.

A dump of a large cluster is far beyond the bounds that ``api.yamlfile`` holds config files to (20,000
values), so dumps are read here with bounds of their own: a size limit, and no YAML aliases. kubectl
never writes aliases, and refusing them bounds what a file stands for by its size: PyYAML builds an alias
as a second reference to one object, never a copy, so a "billion laughs" file loads small and is refused
before anything walks it. JSON is read with the standard library, YAML with libyaml where PyYAML has
it. Several YAML documents, ``kind: List`` and a JSON array of objects are all accepted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from dra_driver.planning.snapshot import ClusterSnapshot, PlanInputError, flatten

__all__ = ["MAX_DUMP_BYTES", "load_cluster_files", "read_documents", "read_text"]

MAX_DUMP_BYTES = 512 * 1024 * 1024
"""A dump of 10,000 nodes' slices is about 300 MiB of YAML; larger files are refused before parsing."""

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_text(path: str) -> tuple[str, str]:
    """The UTF-8 text of ``path`` (``-``: stdin) and the name to call it by in messages."""
    name = "stdin" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_DUMP_BYTES + 1)
        else:
            with Path(path).open("rb") as file:
                data = file.read(MAX_DUMP_BYTES + 1)
    except OSError as err:
        raise PlanInputError(f"read {name}: {err.strerror or err}") from err
    if len(data) > MAX_DUMP_BYTES:
        raise PlanInputError(f"{name} is larger than {MAX_DUMP_BYTES} bytes")
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError as err:
        raise PlanInputError(f"{name} is not UTF-8 text (invalid byte at offset {err.start})") from err


def _refuse_aliases(documents: list[Any], name: str) -> None:
    """PyYAML builds an alias as the same object as its anchor, so a dump that repeats no list or object
    has no alias. Each container is visited once, so this costs the file's size, never its expansion."""
    seen: set[int] = set()
    stack = list(documents)
    while stack:
        value = stack.pop()
        if not isinstance(value, dict | list):
            continue
        if id(value) in seen:
            raise PlanInputError(
                f"{name}: YAML aliases are not read in cluster dumps (kubectl writes none); expand them or "
                "export the objects again"
            )
        seen.add(id(value))
        stack.extend(value.values() if isinstance(value, dict) else value)


def read_documents(text: str, name: str) -> list[Any]:
    """The documents of a JSON or YAML text, aliases refused."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except ValueError:
            pass  # not JSON after all (YAML flow style): read it as YAML below
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise PlanInputError(f"{name} is neither valid YAML nor JSON{where}: {problem}") from err
    _refuse_aliases(documents, name)
    return documents


def load_cluster_files(paths: list[str]) -> ClusterSnapshot:
    """The objects of every file, in order (``-`` reads stdin)."""
    snapshot = ClusterSnapshot()
    for path in paths:
        text, name = read_text(path)
        objects = [obj for document in read_documents(text, name) for obj in flatten(document, name)]
        snapshot = snapshot.merged(ClusterSnapshot.of(objects, name))
    return snapshot
