"""The node plugin's claim preparer on a test's directory, with claims read from memory: the one layout
the plugin's unit tests build it with (checkpoint under ``state/``, CDI specs under ``cdi/``, the host
root under ``host/``, a board and claim ledgers per device), and the damage a tenant can do to its
claim's ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dra_driver.core.devices import GIB, Device
from dra_driver.core.kube import ApiError
from kubeletplugin import cdi
from kubeletplugin.checkpoint_store import CheckpointStore
from kubeletplugin.ledgers import Ledgers
from kubeletplugin.limits import Catalog
from kubeletplugin.paths import NodePaths
from kubeletplugin.state import ClaimKey, ClaimPreparer
from shim.ledger import ClaimLedger
from tests.support.plugin_claims import NODE, npu


class MemoryReader:
    """The API server seam, in memory: claims by (namespace, name); counts reads."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.gets = 0
        self.events: list[tuple[str, str]] = []
        self.down = False

    def add(self, obj: dict[str, Any]) -> ClaimKey:
        meta = obj["metadata"]
        self.claims[(meta["namespace"], meta["name"])] = obj
        return ClaimKey(meta["namespace"], meta["name"], meta["uid"])

    def get_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.claims.get((namespace, name))

    def list_claims(self) -> list[dict[str, Any]]:
        if self.down:
            raise ApiError("list ResourceClaims: connection refused")
        return list(self.claims.values())

    def node_event(self, node_name: str, reason: str, message: str, warning: bool = True) -> None:
        self.events.append((reason, message))


def node_paths(tmp_path: Path) -> NodePaths:
    """Limits files, boards and claim ledgers under ``run/``."""
    return NodePaths(state_dir=tmp_path / "state", run_dir=tmp_path / "run", cdi_dir=tmp_path / "cdi")


def node_preparer(
    tmp_path: Path,
    reader: Any,
    *,
    paths: NodePaths | None = None,
    devices: list[Device] | None = None,
    ledgers: bool = True,
    load: bool = True,
) -> ClaimPreparer:
    """A preparer over ``devices`` (two 64 GiB NPUs by default); ``load``: its checkpoint loaded, as at a
    plugin's start before ``recover``."""
    paths = paths or node_paths(tmp_path)
    devices = devices or [npu(0), npu(1)]
    preparer = ClaimPreparer(
        driver="xpushare.io",
        pool=NODE,
        reader=reader,
        catalog=Catalog(devices),
        store=CheckpointStore(paths.checkpoint_dir, "boot-1"),
        layout=cdi.HostLayout(tmp_path / "host", tmp_path / "host", None, paths.devices_dir),
        paths=paths,
        ledgers=Ledgers(paths, {d.uuid: d.memory_bytes for d in devices}, enabled=ledgers),
    )
    if load:
        preparer.store.load()
    return preparer


LEDGER_DAMAGE = ("truncated", "garbage", "short", "directory", "another claim's")


def damage_ledger(path: Path, how: str) -> None:
    """What a tenant can do to its claim's ledger, which its containers may write (``LEDGER_DAMAGE``), and
    what a broken node leaves (a stray directory, another claim's ledger under its name)."""
    if how == "truncated":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"\xa5" * 70000)
    elif how == "short":
        path.write_bytes(b"garbage")
    elif how == "directory":
        path.unlink()
        path.mkdir()
    elif how == "another claim's":
        path.unlink()
        ClaimLedger.create(path, "someone-else", "NPU-UUID-0", 64 * GIB)
    else:
        raise ValueError(f"how: {how!r} must be one of {', '.join(LEDGER_DAMAGE)}")

