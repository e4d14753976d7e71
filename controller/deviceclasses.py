"""Our DeviceClasses (npu.xpushare.io, gpu.xpushare.io): built from the driver name, installed and kept
up to date by the cluster controller.

Each class selects on the driver and the ``type`` attribute with CEL. The controller owns these objects:
a manual edit of a selector is put back on the next pass, so claims keep matching what the slices
publish. An optional class-level SharingConfig lands in each class's ``config``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.settings import ATTRIBUTE_DOMAIN, DRIVER_NAME
from dra_driver.core.devices import DeviceType
from dra_driver.core.kube import DEVICE_CLASSES, ApiError, KubeApi
from dra_driver.core.kubetypes import Obj

log = logging.getLogger(__name__)

MANAGED_BY = {"app.kubernetes.io/managed-by": "xpushare-controller"}


def class_name(device_type: DeviceType, driver_name: str = DRIVER_NAME) -> str:
    return f"{device_type.value}.{driver_name}"


def selector(device_type: DeviceType, driver_name: str = DRIVER_NAME) -> str:
    attribute = f'device.attributes["{ATTRIBUTE_DOMAIN}"].type'
    return f'device.driver == "{driver_name}" && {attribute} == "{device_type.value}"'


def device_classes(
    driver_name: str = DRIVER_NAME, sharing_config: Mapping[str, Any] | None = None
) -> list[Obj]:
    """The DeviceClass objects, one per device type, in resource.k8s.io/v1 JSON form."""
    classes = []
    for device_type in DeviceType:
        spec: Obj = {"selectors": [{"cel": {"expression": selector(device_type, driver_name)}}]}
        if sharing_config:
            spec["config"] = [{"opaque": {"driver": driver_name, "parameters": dict(sharing_config)}}]
        classes.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "DeviceClass",
                "metadata": {"name": class_name(device_type, driver_name), "labels": dict(MANAGED_BY)},
                "spec": spec,
            }
        )
    return classes


@dataclass(frozen=True, slots=True)
class InstallResult:
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


def _needs_update(wanted: Obj, stored: Obj) -> bool:
    stored_spec = stored.get("spec") or {}
    wanted_spec = wanted["spec"]
    labels = (stored.get("metadata") or {}).get("labels") or {}
    return any(stored_spec.get(key) != wanted_spec.get(key) for key in ("selectors", "config")) or any(
        labels.get(key) != value for key, value in MANAGED_BY.items()
    )


def install_device_classes(api: KubeApi, classes: list[Obj]) -> InstallResult:
    """Create missing classes and restore changed ones; untouched classes cost one GET each."""
    created, updated, unchanged = [], [], []
    for wanted in classes:
        name = wanted["metadata"]["name"]
        try:
            stored = api.get(f"{DEVICE_CLASSES}/{name}")
        except ApiError as err:
            if err.status != 404:
                raise
            api.create(DEVICE_CLASSES, wanted)
            created.append(name)
            continue
        if not _needs_update(wanted, stored):
            unchanged.append(name)
            continue
        metadata = dict(stored.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **MANAGED_BY}
        api.replace(f"{DEVICE_CLASSES}/{name}", {**wanted, "metadata": metadata})
        updated.append(name)
    if created or updated:
        log.info("device classes installed", extra={"classes_created": created, "classes_updated": updated})
    return InstallResult(tuple(created), tuple(updated), tuple(unchanged))
