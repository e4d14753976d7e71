"""Finds and decodes the ``xpushare.io`` opaque configs inside DeviceClasses and ResourceClaims.

Admission and ``xpushare config validate`` both look at whole objects, not bare parameters: they must skip
the configs of other drivers (DESIGN: those are ignored) and say where in the object a bad config sits,
as the API server would (``spec.devices.config[1].opaque.parameters.priority``). The object is the plain
mapping of its JSON or YAML form, so this works for any ``resource.k8s.io`` version with this layout.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from api.errors import ConfigValidationError, Issue, join_path
from api.parsed import describe
from api.v1alpha1.decode import decode_parsed
from api.v1alpha1.sharing import SharingConfig

DRIVER_NAME = "xpushare.io"
"""The driver name that configs carry unless the cluster runs the driver under another name."""

CONFIG_LISTS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "DeviceClass": (("spec", "config"),),
    "ResourceClaim": (("spec", "devices", "config"), ("status", "allocation", "devices", "config")),
    "ResourceClaimTemplate": (("spec", "spec", "devices", "config"),),
}
"""Where each kind keeps its list of device configs (a claim's allocation holds copies of both kinds)."""


@dataclass(frozen=True)
class OpaqueParameters:
    """The raw parameters of one opaque config for our driver, and where they sit in the object."""

    path: str
    parameters: Any


def find_opaque_parameters(obj: Mapping[str, Any], driver: str = DRIVER_NAME) -> list[OpaqueParameters]:
    """Every opaque config of ``driver`` in ``obj`` (a DeviceClass, ResourceClaim or template).

    Raises ``ConfigValidationError`` when the object's kind is not one of those or a config list is
    malformed; configs of other drivers are skipped.
    """
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in CONFIG_LISTS:  # a list or an object is not hashable
        allowed = ", ".join(CONFIG_LISTS)
        got = repr(kind) if isinstance(kind, str) else describe(kind)
        raise ConfigValidationError([Issue("kind", f"must be one of {allowed} (got {got})")])
    found: list[OpaqueParameters] = []
    issues: list[Issue] = []
    for keys in CONFIG_LISTS[str(kind)]:
        for item in _walk_config_list(obj, keys, driver):
            if isinstance(item, Issue):
                issues.append(item)
            else:
                found.append(item)
    if issues:
        raise ConfigValidationError(issues)
    return found


def decode_object_configs(
    obj: Mapping[str, Any], driver: str = DRIVER_NAME
) -> list[tuple[str, SharingConfig]]:
    """Decode every ``driver`` config in ``obj`` into ``(path, config)`` pairs, or raise one error for all."""
    decoded: list[tuple[str, SharingConfig]] = []
    issues: list[Issue] = []
    for found in find_opaque_parameters(obj, driver):
        # Parameters are already parsed here: anything but an object is refused as it is, even a string
        # that happens to hold JSON text, as the API server would store it as a JSON string.
        try:
            decoded.append((found.path, decode_parsed(found.parameters, found.path)))
        except ConfigValidationError as err:
            issues.extend(err.issues)
    if issues:
        raise ConfigValidationError(issues)
    return decoded


def _walk_config_list(
    obj: Mapping[str, Any], keys: Sequence[str], driver: str
) -> Iterator[OpaqueParameters | Issue]:
    node: Any = obj
    for depth, key in enumerate(keys):
        if node is None or (isinstance(node, Mapping) and key not in node):
            return  # an absent config list means no configs
        if not isinstance(node, Mapping):
            yield Issue(".".join(keys[:depth]), "must be an object")
            return
        node = node[key]
    path = ".".join(keys)
    if node is None:
        return
    if not isinstance(node, list):
        yield Issue(path, "must be a list of device configs")
        return
    for index, entry in enumerate(node):
        yield from _opaque_entry(entry, f"{path}[{index}]", driver)


def _opaque_entry(entry: Any, path: str, driver: str) -> Iterator[OpaqueParameters | Issue]:
    if not isinstance(entry, Mapping):
        yield Issue(path, "must be an object")
        return
    opaque = entry.get("opaque")
    if opaque is None:
        return  # not an opaque config
    if not isinstance(opaque, Mapping):
        yield Issue(join_path(path, "opaque"), "must be an object with driver and parameters")
        return
    if opaque.get("driver") != driver:
        return  # another driver's config: not ours to judge
    if "parameters" not in opaque:
        yield Issue(join_path(path, "opaque.parameters"), f"required for driver {driver}")
        return
    yield OpaqueParameters(join_path(path, "opaque.parameters"), opaque["parameters"])
