"""CDI specs: what the container runtime adds to a container that uses a prepared claim.

One transient spec per claim, named after the claim UID, written atomically into the CDI directory
(tmpfs on real nodes, so the plugin re-creates the specs of checkpointed claims when it starts).

The spec's devices carry only their own device node; everything the claim's containers share (the
vendor's control nodes and driver mounts, the shim, ``LD_PRELOAD``, the read-only limits file, the
device ledger directory, ``XPUSHARE_*`` and ``ASCEND_VISIBLE_DEVICES``) sits in the spec-level edits,
which the runtime applies whenever any device of the spec is injected. ``ASCEND_RT_VISIBLE_DEVICES`` is
never set: the runtime counts devices inside the container from 0, so a physical id there fails.

The spec declares the lowest ``cdiVersion`` its features need (containerd 1.7.0-1.7.11, CRI-O 1.26 and
podman 4.3-4.6 accept nothing newer than 0.5.0); the rules mirror the upstream ``specs-go`` checks.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.errors import XPUShareError
from dra_driver.core.fileio import write_atomically

CDI_VENDOR = "xpushare.io"
CDI_CLASS = "claim"
CDI_KIND = f"{CDI_VENDOR}/{CDI_CLASS}"

# Where things appear inside the container; fixed so workloads and the shim can rely on them.
CONTAINER_SHIM_PATH = "/usr/local/xpushare/lib/libxpushare.so"
CONTAINER_LIMITS_PATH = "/etc/xpushare/limits"
CONTAINER_LEDGER_DIR = "/var/run/xpushare/ledger"

ASCEND_CONTROL_NODES = ("/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc")
ASCEND_MOUNTS = (
    "/usr/local/Ascend/driver/lib64",
    "/usr/local/Ascend/driver/version.info",
    "/etc/ascend_install.info",
    "/usr/local/dcmi",
    "/usr/local/bin/npu-smi",
)
NVIDIA_CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
NVIDIA_LIBRARIES = (
    "libcuda.so.1",
    "libnvidia-ml.so.1",
    "libnvidia-ptxjitcompiler.so.1",
    "libnvidia-nvvm.so.4",
    "libcudadebugger.so.1",
)
NVIDIA_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
NVIDIA_BINARIES = ("/usr/bin/nvidia-smi",)
READ_ONLY = ("ro", "nosuid", "nodev", "bind")
READ_WRITE = ("rw", "nosuid", "nodev", "bind")

_CDI_NAME_INVALID = re.compile(r"[^A-Za-z0-9_.:-]")


class CdiError(XPUShareError):
    """A CDI spec could not be written or removed."""


@dataclass(frozen=True, slots=True)
class HostLayout:
    """Where the node keeps the vendor's files; computed once at start, not per claim.

    ``device_root`` and ``driver_root`` prefix the container paths on the host (``/`` on a real node; a
    temporary directory in tests, which hold fake device nodes there).
    """

    device_root: Path
    driver_root: Path
    shim_path: Path | None
    ledger_dir: Path
    ascend_mounts: tuple[str, ...] = ()
    nvidia_mounts: tuple[str, ...] = ()
    vendor_nvidia_cdi_kind: str | None = None
    kind: str = CDI_KIND

    @classmethod
    def discover(
        cls,
        device_root: Path,
        driver_root: Path,
        shim_path: Path | None,
        ledger_dir: Path,
        *,
        vendor_nvidia_cdi_kind: str | None = None,
        kind: str = CDI_KIND,
    ) -> HostLayout:
        """Look up which vendor files exist (mounting a missing one would fail the container)."""
        nvidia_files = [f"{d}/{lib}" for d in NVIDIA_LIBRARY_DIRS for lib in NVIDIA_LIBRARIES]
        return cls(
            device_root=device_root,
            driver_root=driver_root,
            shim_path=shim_path,
            ledger_dir=ledger_dir,
            ascend_mounts=_existing(driver_root, ASCEND_MOUNTS),
            nvidia_mounts=_existing(driver_root, (*nvidia_files, *NVIDIA_BINARIES)),
            vendor_nvidia_cdi_kind=vendor_nvidia_cdi_kind,
            kind=kind,
        )


def _existing(root: Path, paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(p for p in paths if os.path.lexists(_host(root, p)))


def _host(root: Path, container_path: str) -> str:
    return str(root / container_path.lstrip("/"))


@dataclass(frozen=True, slots=True)
class SpecDevice:
    """One device of a claim as the CDI spec needs it."""

    name: str
    device_type: str
    index: int
    minor: int
    uuid: str


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    """The input of ``build_spec``: everything about one claim that shows in its containers."""

    claim_uid: str
    devices: tuple[SpecDevice, ...]
    limits_path: Path
    extra_env: tuple[str, ...] = field(default=())


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
    return cdi_dir / f"{_prefix(kind)}{claim_uid}.json"


def vendor_device_ids(layout: HostLayout, device_type: str, uuid: str) -> tuple[str, ...]:
    """Extra CDI ids naming the vendor's own spec for this device (NVIDIA's nvidia-ctk spec)."""
    if device_type == "gpu" and layout.vendor_nvidia_cdi_kind:
        return (f"{layout.vendor_nvidia_cdi_kind}={uuid}",)
    return ()


def _node(layout: HostLayout, path: str) -> dict[str, Any]:
    host = _host(layout.device_root, path)
    # hostPath only where it differs: it needs cdiVersion 0.5.0.
    return {"path": path} if host == path else {"path": path, "hostPath": host}


def _mount(root: Path, path: str, options: Sequence[str] = READ_ONLY) -> dict[str, Any]:
    return {"hostPath": _host(root, path), "containerPath": path, "options": list(options)}


def _device_edits(layout: HostLayout, device: SpecDevice) -> dict[str, Any]:
    # The identity variable also keeps the edits non-empty, which CDI requires of every device.
    edits: dict[str, Any] = {
        "env": [f"XPUSHARE_DEVICE_{device.device_type.upper()}{device.index}={device.uuid}"]
    }
    if device.device_type == "npu":
        # /dev/davinci<N> is named by the physical id (the minor); the index is the runtime's logical id.
        edits["deviceNodes"] = [_node(layout, f"/dev/davinci{device.minor}")]
    elif not layout.vendor_nvidia_cdi_kind:  # else the vendor's spec adds the node and the driver
        edits["deviceNodes"] = [_node(layout, f"/dev/nvidia{device.minor}")]
    return edits


def _bind(host: Path, container: str, options: Sequence[str] = READ_ONLY) -> dict[str, Any]:
    return {"hostPath": str(host), "containerPath": container, "options": list(options)}


def _shared_edits(layout: HostLayout, claim: ClaimSpec) -> dict[str, Any]:
    kinds = {d.device_type for d in claim.devices}
    nodes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    env = [f"XPUSHARE_CLAIM_UID={claim.claim_uid}", f"XPUSHARE_LIMITS_FILE={CONTAINER_LIMITS_PATH}"]
    if "npu" in kinds:
        nodes += [_node(layout, p) for p in ASCEND_CONTROL_NODES]
        mounts += [_mount(layout.driver_root, p) for p in layout.ascend_mounts]
        ids = sorted({d.minor for d in claim.devices if d.device_type == "npu"})
        env.append("ASCEND_VISIBLE_DEVICES=" + ",".join(str(i) for i in ids))
    if "gpu" in kinds and not layout.vendor_nvidia_cdi_kind:
        nodes += [_node(layout, p) for p in NVIDIA_CONTROL_NODES]
        mounts += [_mount(layout.driver_root, p) for p in layout.nvidia_mounts]
    if layout.shim_path is not None:
        mounts.append(_bind(layout.shim_path, CONTAINER_SHIM_PATH))
        env += [f"LD_PRELOAD={CONTAINER_SHIM_PATH}", f"XPUSHARE_SHIM={CONTAINER_SHIM_PATH}"]
    mounts.append(_bind(claim.limits_path, CONTAINER_LIMITS_PATH))
    # Only the ledgers of this claim's devices: a tenant never sees another device's accounting.
    for uuid in sorted({d.uuid for d in claim.devices}):
        mounts.append(_bind(layout.ledger_dir / uuid, f"{CONTAINER_LEDGER_DIR}/{uuid}", READ_WRITE))
    env += [f"XPUSHARE_LEDGER_DIR={CONTAINER_LEDGER_DIR}", *claim.extra_env]
    edits: dict[str, Any] = {"env": env, "mounts": mounts}
    if nodes:
        edits["deviceNodes"] = nodes
    return edits


def build_spec(layout: HostLayout, claim: ClaimSpec) -> dict[str, Any]:
    """The CDI spec of one claim (pure: the same input gives the same spec)."""
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
        cdi_dir.mkdir(parents=True, exist_ok=True)
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
