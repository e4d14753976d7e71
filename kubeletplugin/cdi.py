"""CDI specs: what the container runtime adds to a container that uses a prepared claim.

One transient spec per claim, named after the claim UID, written atomically into the CDI directory
(tmpfs on real nodes, so the plugin re-creates the specs of checkpointed claims when it starts).

This module knows no vendor: what a device of a type needs (its node, the vendor's control nodes,
driver files and variables) comes from the vendor profile of that type (``dra_driver.core.vendors``),
in container paths that this module maps to host paths. The spec's devices carry only their own edits;
everything the claim's containers share (the vendors' shared edits, the shim, ``LD_PRELOAD``, the
read-only limits file, each device's directory read-only with the claim's own ledger of it read-write,
and ``XPUSHARE_*``) sits in the spec-level edits, which the runtime applies whenever any device of the
spec is injected.

The spec declares the lowest ``cdiVersion`` its features need (containerd 1.7.0-1.7.11, CRI-O 1.26 and
podman 4.3-4.6 accept nothing newer than 0.5.0); the rules mirror the upstream ``specs-go`` checks.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from api.errors import XPUShareError
from dra_driver.core.devices import DeviceType
from dra_driver.core.fileio import ensure_directory, write_atomically
from dra_driver.core.vendors import PROFILES, ClaimedDevice, VendorHost, profile_for
from kubeletplugin.ldcache import ldcache_hook
from kubeletplugin.paths import device_dir_path, file_name_part
from shim import LIMITS_DIR, board_path, claim_ledger_path

log = logging.getLogger(__name__)

CDI_VENDOR = "xpushare.io"
CDI_CLASS = "claim"
CDI_KIND = f"{CDI_VENDOR}/{CDI_CLASS}"

# Where things appear inside the container; fixed so workloads and the shim can rely on them.
CONTAINER_SHIM_PATH = "/usr/local/xpushare/lib/libxpushare.so"
# The shim's built-in directory (xpushare.h): no variable moves it. Each claim's file is mounted there under
# its UID, so every claim of a container counts.
CONTAINER_LIMITS_DIR = LIMITS_DIR
# Per device of the claim: the device's directory (its board, every claim's ledger) read-only, and the
# claim's own ledger of the device, the one file a container may write (under the claim's UID: two
# claims of a container on one device each keep theirs).
CONTAINER_DEVICES_DIR = "/var/run/xpushare/devices"
CONTAINER_CLAIMS_DIR = "/var/run/xpushare/claims"

READ_ONLY = ("ro", "nosuid", "nodev", "bind")
READ_WRITE = ("rw", "nosuid", "nodev", "bind")

_CDI_NAME_INVALID = re.compile(r"[^A-Za-z0-9_.:-]")


class CdiError(XPUShareError):
    """A CDI spec could not be written or removed."""


@dataclass(frozen=True, slots=True)
class HostLayout:
    """Where the node keeps what containers get; computed once at start, not per claim.

    ``device_root`` and ``driver_root`` prefix the container paths on the host (``/`` on a real node; a
    temporary directory in tests, which hold fake device nodes there). ``vendors`` holds what each
    vendor's profile found on the host; a type missing from it gets no driver files.
    """

    device_root: Path
    driver_root: Path
    shim_path: Path | None
    devices_dir: Path
    vendors: Mapping[DeviceType, VendorHost] = field(default_factory=dict)
    kind: str = CDI_KIND

    @classmethod
    def discover(
        cls,
        device_root: Path,
        driver_root: Path,
        shim_path: Path | None,
        devices_dir: Path,
        *,
        vendor_cdi_kinds: Mapping[DeviceType, str] | None = None,
        vendor_cdi_devices: Mapping[DeviceType, frozenset[str]] | None = None,
        kind: str = CDI_KIND,
        driver_lookup_root: Path | None = None,
    ) -> HostLayout:
        """Have each vendor's profile look up which of its files exist (mounting a missing one would
        fail the container); ``vendor_cdi_kinds`` names the vendors' own CDI specs on this node and
        ``vendor_cdi_devices`` the devices they hold (none given: every device). ``driver_lookup_root`` is
        where this process sees the host's ``driver_root`` (a read-only mount of the host's root in the
        plugin's pod); the spec names host paths below ``driver_root``."""
        own_kinds, own_devices = vendor_cdi_kinds or {}, vendor_cdi_devices or {}
        vendors = {}
        for device_type, profile in PROFILES.items():
            found = profile.locate(driver_lookup_root or driver_root, own_kinds.get(device_type))
            vendors[device_type] = replace(found, cdi_devices=own_devices.get(device_type, frozenset()))
        return cls(
            device_root=device_root,
            driver_root=driver_root,
            shim_path=shim_path,
            devices_dir=devices_dir,
            vendors=vendors,
            kind=kind,
        )

    def vendor(self, device_type: DeviceType | str) -> VendorHost:
        """What the vendor of ``device_type`` has on this node."""
        return self.vendors.get(DeviceType(device_type), _NOTHING_FOUND)


_NOTHING_FOUND = VendorHost()


def _host(root: Path, container_path: str) -> str:
    return str(root / container_path.lstrip("/"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecDevice(ClaimedDevice):
    """One device of a claim as the CDI spec needs it: what its vendor's edits are built from, its name
    in the spec, and its type, which picks the vendor profile (``npu`` or ``gpu``)."""

    name: str
    device_type: str


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    """The input of ``build_spec``: everything about one claim that shows in its containers. The spec
    lists ``devices`` in their order, and ``extra_env`` last among the shared variables."""

    claim_uid: str
    devices: tuple[SpecDevice, ...]
    limits_path: Path
    extra_env: tuple[str, ...] = field(default=())
    ledgers: bool = True  # mount the devices' directories and the claim's ledgers (False: none exist)


def spec_device_name(claim_uid: str, device_name: str, ordinal: int = 0) -> str:
    """CDI device name for a claim's device; unique because claim UIDs are never reused."""
    suffix = f"-{ordinal}" if ordinal else ""
    return _CDI_NAME_INVALID.sub("-", f"{claim_uid}-{device_name}{suffix}")


def kind_for(driver_name: str) -> str:
    """The CDI kind of a driver's claim specs (``xpushare.io/claim``)."""
    return f"{driver_name}/{CDI_CLASS}"


def qualified_name(name: str, kind: str = CDI_KIND) -> str:
    return f"{kind}={name}"


def _prefix(kind: str) -> str:
    return kind.replace("/", "-") + "_"


def spec_path(cdi_dir: Path, claim_uid: str, kind: str = CDI_KIND) -> Path:
    return cdi_dir / f"{_prefix(kind)}{file_name_part(claim_uid)}.json"


def vendor_device_ids(layout: HostLayout, device_type: str, uuid: str) -> tuple[str, ...]:
    """Extra CDI ids naming the vendor's own spec for this device (NVIDIA's nvidia-ctk spec)."""
    return profile_for(device_type).cdi_device_ids(uuid, layout.vendor(device_type))


def _node(layout: HostLayout, path: str) -> dict[str, Any]:
    host = _host(layout.device_root, path)
    # hostPath only where it differs: it needs cdiVersion 0.5.0.
    return {"path": path} if host == path else {"path": path, "hostPath": host}


def _mount(root: Path, path: str, options: Sequence[str] = READ_ONLY) -> dict[str, Any]:
    return {"hostPath": _host(root, path), "containerPath": path, "options": list(options)}


def _bind(host: Path, container: str, options: Sequence[str] = READ_ONLY) -> dict[str, Any]:
    return {"hostPath": str(host), "containerPath": container, "options": list(options)}


def _cdi_edits(
    layout: HostLayout, env: Sequence[str], nodes: Sequence[str], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """CDI ``containerEdits``; lists that would be empty are left out."""
    edits: dict[str, Any] = {"env": list(env)}
    if mounts:
        edits["mounts"] = mounts
    if nodes:
        edits["deviceNodes"] = [_node(layout, path) for path in nodes]
    return edits


def _driver_root(layout: HostLayout, device_type: str) -> Path:
    """Where a vendor's driver files are on the host: the driver root, or its vendor's directory below."""
    prefix = layout.vendor(device_type).host_prefix
    return layout.driver_root / prefix if prefix else layout.driver_root


def _device_edits(layout: HostLayout, device: SpecDevice) -> dict[str, Any]:
    edits = profile_for(device.device_type).device_edits(device, layout.vendor(device.device_type))
    root = _driver_root(layout, device.device_type)
    driver_files = [_mount(root, path) for path in edits.mounts]
    return _cdi_edits(layout, edits.env, edits.device_nodes, driver_files)


@dataclass(frozen=True, slots=True)
class _SharedVendorEdits:
    env: tuple[str, ...]
    device_nodes: tuple[str, ...]
    mounts: tuple[dict[str, Any], ...]
    library_dirs: tuple[str, ...]


def _vendor_edits(layout: HostLayout, claim: ClaimSpec) -> _SharedVendorEdits:
    """The shared edits of each vendor that the claim has devices of, in ``PROFILES`` order."""
    env: list[str] = []
    nodes: list[str] = []
    mounts: list[dict[str, Any]] = []
    library_dirs: list[str] = []
    for device_type, profile in PROFILES.items():
        devices = [d for d in claim.devices if d.device_type == device_type]
        if devices:
            edits = profile.shared_edits(devices, layout.vendor(device_type))
            root = _driver_root(layout, device_type)
            env += edits.env
            nodes += edits.device_nodes
            mounts += [_mount(root, path) for path in edits.mounts]
            library_dirs += edits.library_dirs
    return _SharedVendorEdits(tuple(env), tuple(nodes), tuple(mounts), tuple(dict.fromkeys(library_dirs)))


def container_limits_path(claim_uid: str) -> str:
    """Where the claim's limits file appears in its containers."""
    return f"{CONTAINER_LIMITS_DIR}/{file_name_part(claim_uid)}"


def container_files(claim_uid: str, uuid: str) -> tuple[str, str]:
    """Where a claim's own ledger of device ``uuid`` and the device's board appear in its containers."""
    ledger = f"{CONTAINER_CLAIMS_DIR}/{file_name_part(claim_uid)}/{uuid}"
    return ledger, str(board_path(Path(CONTAINER_DEVICES_DIR) / uuid))


def _shared_edits(layout: HostLayout, claim: ClaimSpec) -> dict[str, Any]:
    vendor = _vendor_edits(layout, claim)
    # The same value in every claim's spec: a container with several claims gets each spec's variables.
    env = [f"XPUSHARE_LIMITS_FILE={CONTAINER_LIMITS_DIR}"]
    env += vendor.env
    mounts = list(vendor.mounts)
    if layout.shim_path is not None:
        mounts.append(_bind(layout.shim_path, CONTAINER_SHIM_PATH))
        env += [f"LD_PRELOAD={CONTAINER_SHIM_PATH}", f"XPUSHARE_SHIM={CONTAINER_SHIM_PATH}"]
    mounts.append(_bind(claim.limits_path, container_limits_path(claim.claim_uid)))
    # Only this claim's devices: a tenant never sees another device's accounting. Everything shared with
    # the device's other claims is read-only; its own ledger is the one file it can write.
    for uuid in sorted({d.uuid for d in claim.devices} if claim.ledgers else ()):
        device_dir = device_dir_path(layout.devices_dir, uuid)  # a name that cannot leave the directory
        ledger, _board = container_files(claim.claim_uid, uuid)
        mounts.append(_bind(device_dir, f"{CONTAINER_DEVICES_DIR}/{uuid}", READ_ONLY))
        own = claim_ledger_path(device_dir, file_name_part(claim.claim_uid))
        mounts.append(_bind(own, ledger, READ_WRITE))
    env += [f"XPUSHARE_DEVICES_DIR={CONTAINER_DEVICES_DIR}", *claim.extra_env]
    edits = _cdi_edits(layout, env, _present_nodes(layout, vendor.device_nodes), mounts)
    if vendor.library_dirs:
        edits["hooks"] = [ldcache_hook(vendor.library_dirs)]
    return edits


def _present_nodes(layout: HostLayout, nodes: Sequence[str]) -> list[str]:
    """The shared (control) device nodes that exist on the host now: a missing one would fail every
    container, and some appear only once their kernel module loads (``/dev/nvidia-uvm``), so this is
    looked at when each spec is written, not once at start."""
    present = [path for path in nodes if os.path.lexists(_host(layout.device_root, path))]
    if len(present) != len(nodes):
        missing = [path for path in nodes if path not in present]
        log.warning("control device nodes missing on this host: left out of the claim's CDI spec",
                    extra={"missing": missing, "device_root": str(layout.device_root)})
    return present


def build_spec(layout: HostLayout, claim: ClaimSpec) -> dict[str, Any]:
    """The CDI spec of one claim: the same input and host files give the same spec (the only file looked
    at is whether each shared device node exists)."""
    spec: dict[str, Any] = {
        "kind": layout.kind,
        "devices": [{"name": d.name, "containerEdits": _device_edits(layout, d)} for d in claim.devices],
        "containerEdits": _shared_edits(layout, claim),
    }
    return {"cdiVersion": minimum_version(spec), **spec}


def _all_edits(spec: dict[str, Any]) -> list[dict[str, Any]]:
    edits = [d.get("containerEdits", {}) for d in spec.get("devices", [])]
    return [*edits, spec.get("containerEdits", {})]


def _needs_v050(spec: dict[str, Any]) -> bool:
    if any(d.get("name", "a")[:1] and not d["name"][0].isalpha() for d in spec.get("devices", [])):
        return True
    return any(n.get("hostPath") for e in _all_edits(spec) for n in e.get("deviceNodes", []))


def _needs_v060(spec: dict[str, Any]) -> bool:
    if spec.get("annotations") or any(d.get("annotations") for d in spec.get("devices", [])):
        return True
    _, _, cdi_class = spec.get("kind", "").partition("/")
    return "." in cdi_class


def _needs_v070(spec: dict[str, Any]) -> bool:
    return any("intelRdt" in e or e.get("additionalGids") for e in _all_edits(spec))


def _needs_v110(spec: dict[str, Any]) -> bool:
    for edits in _all_edits(spec):
        rdt = edits.get("intelRdt") or {}
        if edits.get("netDevices") or "schemata" in rdt or rdt.get("enableMonitoring"):
            return True
    return False


def minimum_version(spec: dict[str, Any]) -> str:
    """The lowest cdiVersion that accepts every feature ``spec`` uses (0.3.0 is the oldest supported)."""
    checks = (
        ("1.1.0", _needs_v110),
        ("0.7.0", _needs_v070),
        ("0.6.0", _needs_v060),
        ("0.5.0", _needs_v050),
        ("0.4.0", lambda s: any(m.get("type") for e in _all_edits(s) for m in e.get("mounts", []))),
    )
    for version, needs in checks:
        if needs(spec):
            return version
    return "0.3.0"


def write_spec(cdi_dir: Path, claim_uid: str, spec: dict[str, Any]) -> Path:
    """Write the claim's spec atomically (temp file in the same directory, rename), mode 0644."""
    path = spec_path(cdi_dir, claim_uid, spec.get("kind", CDI_KIND))
    try:
        ensure_directory(cdi_dir, 0o755, tighten=False)
        # Not durable: the CDI directory is tmpfs on real nodes, and a spec lost in a crash is
        # re-created from the checkpoint at start. The rename alone keeps readers from torn files.
        write_atomically(path, json.dumps(spec, separators=(",", ":")).encode(), mode=0o644, durable=False)
    except OSError as err:
        raise CdiError(f"write CDI spec {path}: {err}") from err
    return path


def remove_spec(cdi_dir: Path, claim_uid: str, kind: str = CDI_KIND) -> None:
    """Remove the claim's spec; a missing spec is fine (unprepare is idempotent)."""
    path = spec_path(cdi_dir, claim_uid, kind)
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        raise CdiError(f"remove CDI spec {path}: {err}") from err


def listed_claims(cdi_dir: Path, kind: str = CDI_KIND) -> set[str]:
    """Claim UIDs that have a spec of ours in ``cdi_dir`` (to find leftovers after a crash)."""
    if not cdi_dir.is_dir():
        return set()
    prefix = _prefix(kind)
    return {
        p.name[len(prefix) : -len(".json")]
        for p in cdi_dir.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(".json")
    }
