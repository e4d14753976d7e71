"""The NVIDIA Container Toolkit's CDI spec on this node, found rather than configured.

``nvidia-ctk cdi generate`` (and the toolkit's ``nvidia-cdi-refresh`` service) writes a spec of kind
``nvidia.com/gpu`` into ``/etc/cdi`` or ``/var/run/cdi``, naming each GPU by its index and, by default,
by its UUID. Where it names a claimed GPU, the claim's spec refers to that device and lets the toolkit's
spec inject the device's nodes, the driver's libraries and its hooks. The GPU Operator's toolkit writes
a *management* spec (``management.nvidia.com/gpu``) whose only device is ``all``: referring to it would
give a container every GPU, so only the ``nvidia.com/gpu`` kind counts. A spec that cannot be read or
parsed is skipped with a warning: the plugin then injects the driver itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

TOOLKIT_KIND = "nvidia.com/gpu"
SPEC_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
MAX_SPEC_BYTES = 4 << 20
_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class ToolkitSpec:
    """The toolkit's kind and every device name its specs hold (indexes, UUIDs, ``all``)."""

    kind: str
    devices: frozenset[str]
    files: tuple[Path, ...]


def _load(path: Path) -> Any:
    with path.open("rb") as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise ValueError(f"larger than {MAX_SPEC_BYTES} bytes")
    return json.loads(data) if path.suffix == ".json" else yaml.safe_load(data)


def _device_names(spec: Any, kind: str) -> list[str] | None:
    """The device names of a spec of ``kind``; None for any other spec."""
    if not isinstance(spec, dict) or spec.get("kind") != kind:
        return None
    devices = spec.get("devices")
    if not isinstance(devices, list):
        return []
    return [d["name"] for d in devices if isinstance(d, dict) and isinstance(d.get("name"), str)]


def find_toolkit_spec(spec_dirs: Iterable[Path] = SPEC_DIRS, kind: str = TOOLKIT_KIND) -> ToolkitSpec | None:
    """The devices of every spec of ``kind`` (the toolkit's) in ``spec_dirs``; None without one."""
    names: set[str] = set()
    files: list[Path] = []
    for directory in spec_dirs:
        try:
            entries = sorted(p for p in directory.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        except OSError:
            continue  # no such directory on this node
        for path in entries:
            try:
                found = _device_names(_load(path), kind)
            except (OSError, ValueError, yaml.YAMLError) as err:
                log.warning("CDI spec unreadable: skipped", extra={"path": str(path), "error": str(err)})
                continue
            if found is not None:
                names.update(found)
                files.append(path)
    if not files:
        return None
    log.info("NVIDIA's CDI spec found: the GPUs it names are referred to",
             extra={"kind": kind, "files": [str(f) for f in files], "devices": len(names)})
    return ToolkitSpec(kind, frozenset(names), tuple(files))


def referred_spec(wanted: str | None,
                  spec_dirs: Iterable[Path] = SPEC_DIRS) -> tuple[str | None, frozenset[str]]:
    """The kind of NVIDIA's own CDI spec to refer to and the device names it holds. ``auto`` looks for the
    toolkit's spec (``nvidia.com/gpu``), another kind for a spec of that kind; ``none`` or nothing, off. A
    kind whose spec is not on the node is not referred to (the container could not be created): the
    plugin injects the driver itself, and says so."""
    if not wanted or wanted == "none":
        return None, frozenset()
    dirs = list(spec_dirs)
    found = find_toolkit_spec(dirs, TOOLKIT_KIND if wanted == "auto" else wanted)
    if found is None:
        if wanted != "auto":
            log.warning("no CDI spec of the configured NVIDIA kind on this node: the plugin injects the "
                        "GPUs' nodes and driver itself",
                        extra={"kind": wanted, "dirs": [str(d) for d in dirs]})
        return None, frozenset()
    return found.kind, found.devices
