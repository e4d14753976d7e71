"""Claim preparation: the side effects of NodePrepareResources and NodeUnprepareResources.

Prepare path, per claim, under that claim's lock (calls for different claims run in parallel):

1. If the checkpoint records the claim as ``PrepareCompleted``, answer from it (idempotent), re-creating
   its files if they vanished.
2. Read the claim, check it (``claims.parse_claim``), compute limits (``limits.resolve_limits``, pure).
3. Reserve the devices (``accounting``: refused if this node would over-commit a device).
4. Record ``PrepareStarted``, write the limits file and the CDI spec, record ``PrepareCompleted``.
   Any failure rolls back what was done (files, reservation, checkpoint entry).

Unprepare removes the claim's board entries and ledgers, the CDI spec, the limits file, the reservation,
the quota record and the checkpoint entry; a claim that is not known is already unprepared.

Limits are written per physical device (``kubeletplugin.physical``): two partitions of one device in one
claim are one limits line, one board entry and one claim ledger holding their sum. A live quota
(``kubeletplugin.quota``) recorded for the claim is applied every time its files are written, so a
re-prepare or a restart keeps it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from api.errors import XPUShareError
from dra_driver.core.telemetry import tracer
from kubeletplugin import cdi, limitsfile
from kubeletplugin.accounting import Accounting, holdings_of
from kubeletplugin.checkpoint import ClaimState, PreparedClaim, PreparedDevice
from kubeletplugin.checkpoint_store import CheckpointStore
from kubeletplugin.claims import ClaimError, claim_ref, parse_claim
from kubeletplugin.kube import ClaimReader
from kubeletplugin.ledgers import Ledgers
from kubeletplugin.limits import Catalog, Grant, resolve_limits
from kubeletplugin.paths import NodePaths
from kubeletplugin.physical import Quota, claim_limits
from kubeletplugin.quota import read_quota_record, remove_quota_record

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


@dataclass(frozen=True, slots=True)
class ClaimKey:
    """A claim as the kubelet names it."""

    namespace: str
    name: str
    uid: str

    @property
    def ref(self) -> str:
        return claim_ref(self.namespace, self.name, self.uid)


class _ClaimLocks:
    """One lock per claim UID, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, uid: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(uid, (threading.Lock(), 0))
            self._locks[uid] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[uid]
                if users == 1:
                    del self._locks[uid]
                else:
                    self._locks[uid] = (lock, users - 1)


def cdi_names(claim_uid: str, device_names: Iterable[str]) -> list[str]:
    """The CDI device names of a claim's devices, in order: unique, because one device may carry two
    shares (the second gets an ordinal). Prepare records them qualified in the checkpoint; every later
    write of the claim's spec derives them again here from the same device list."""
    seen: dict[str, int] = {}
    names = []
    for device in device_names:
        ordinal = seen.get(device, 0)
        seen[device] = ordinal + 1
        names.append(cdi.spec_device_name(claim_uid, device, ordinal))
    return names


def _to_devices(claim_uid: str, grants: list[Grant], layout: cdi.HostLayout) -> list[PreparedDevice]:
    """Checkpoint entries of the grants, with their CDI ids (``cdi_names``, then the vendor's own)."""
    devices = []
    for grant, name in zip(grants, cdi_names(claim_uid, (g.device for g in grants)), strict=True):
        physical = grant.offer.physical
        vendor_ids = cdi.vendor_device_ids(layout, physical.type.value, physical.uuid)
        devices.append(
            PreparedDevice(
                pool=grant.pool,
                device=grant.device,
                request_names=grant.request_names,
                cdi_device_ids=(cdi.qualified_name(name, layout.kind), *vendor_ids),
                uuid=physical.uuid,
                index=physical.index,
                device_type=physical.type,
                memory_bytes=grant.memory_bytes,
                core_percent=grant.core_percent,
                priority=grant.priority,
                policy=grant.policy,
                share_id=grant.share_id,
                exclusive=grant.exclusive,
                minor=physical.minor,
            )
        )
    return devices


MAX_RECORDED_PODS = 32  # a claim shared by more pods records the first ones (status shows "+N")


def reserved_pods(claim: dict[str, Any]) -> tuple[str, ...]:
    """The pods the claim is reserved for (``status.reservedFor``), as the operator's views name them."""
    entries = ((claim.get("status") or {}).get("reservedFor") or [])
    names = [str(e.get("name", "")) for e in entries
             if isinstance(e, dict) and e.get("resource") == "pods" and e.get("name")]
    return tuple(names[:MAX_RECORDED_PODS])


class ClaimPreparer:
    """Prepares and unprepares claims on this node; safe to call from many threads."""

    def __init__(
        self,
        *,
        driver: str,
        pool: str,
        reader: ClaimReader,
        catalog: Catalog,
        store: CheckpointStore,
        layout: cdi.HostLayout,
        paths: NodePaths,
        ledgers: Ledgers | None = None,
    ) -> None:
        self.driver, self.pool = driver, pool
        self.reader, self.catalog, self.store = reader, catalog, store
        self.layout, self.paths = layout, paths
        self.ledgers = ledgers
        self.accounting = Accounting({d.uuid: d.memory_bytes for d in catalog.physical.values()})
        self._locks = _ClaimLocks()
        # Called with the claim's JSON after a claim was newly prepared, outside the claim's lock and
        # before the answer goes to the kubelet (the plugin applies the claim's quota annotation here).
        self.on_prepared: Callable[[dict[str, Any]], None] | None = None

    def locked(self, uid: str) -> contextlib.AbstractContextManager[None]:
        """Hold the claim's lock (what prepare and unprepare hold) for another change to its files."""
        return self._locks.hold(uid)

    def prepare(self, key: ClaimKey) -> list[PreparedDevice]:
        """Prepare one claim and return its devices; raises ``XPUShareError`` naming the claim."""
        with self._locks.hold(key.uid):
            recorded = self.store.get(key.uid)
            if recorded is not None and recorded.state is ClaimState.PREPARE_COMPLETED:
                if not cdi.spec_path(self.paths.cdi_dir, key.uid, self.layout.kind).exists():
                    self.write_files(recorded)
                return list(recorded.devices)
            if recorded is not None:
                self._remove(key.uid)  # a crash left it half done: start over
            devices, obj = self._prepare_new(key)
        if self.on_prepared is not None:
            try:
                self.on_prepared(obj)
            except Exception:  # the claim is prepared; a failing observer must not undo that
                log.exception("after-prepare hook failed", extra={"claim_uid": key.uid})
        return devices

    def _prepare_new(self, key: ClaimKey) -> tuple[list[PreparedDevice], dict[str, Any]]:
        obj = self.reader.get_claim(key.namespace, key.name)
        if obj is None:
            raise ClaimError(f"{key.ref}: not found in the API server")
        claim = parse_claim(obj, uid=key.uid, driver=self.driver, pool=self.pool)
        devices = _to_devices(key.uid, resolve_limits(claim, self.catalog), self.layout)
        pods = reserved_pods(obj)
        prepared = PreparedClaim(key.uid, key.namespace, key.name, ClaimState.PREPARE_STARTED, tuple(devices),
                                 pods)
        self.accounting.reserve(key.uid, key.ref, holdings_of(prepared), self._owners)
        try:
            self.store.put(prepared, durable=False)
            self.write_files(prepared)
            completed = PreparedClaim(
                key.uid, key.namespace, key.name, ClaimState.PREPARE_COMPLETED, tuple(devices), pods
            )
            self.store.put(completed)
        except BaseException:
            with contextlib.suppress(XPUShareError):
                self._remove(key.uid)
            self.accounting.release(key.uid)
            raise
        _annotate(devices)
        return devices, obj

    def _owners(self) -> dict[str, str]:
        return {uid: claim_ref(c.namespace, c.name, uid) for uid, c in self.store.claims().items()}

    def unprepare(self, key: ClaimKey) -> None:
        """Remove everything prepare made for the claim; unknown claims are already unprepared."""
        with self._locks.hold(key.uid):
            self._remove(key.uid)
            self.accounting.release(key.uid)

    def _remove(self, uid: str) -> None:
        """Undo every side effect; each step runs even when an earlier one failed (first error raised)."""
        errors: list[XPUShareError] = []
        recorded = self.store.get(uid)
        steps: tuple[Callable[[], None], ...] = (
            lambda: self._unregister(recorded),
            lambda: cdi.remove_spec(self.paths.cdi_dir, uid, self.layout.kind),
            lambda: limitsfile.remove_limits(self.paths.limits_dir, uid),
            lambda: self._forget_quota(uid),
            lambda: self._forget(uid),
        )
        for step in steps:
            try:
                step()
            except XPUShareError as err:
                errors.append(err)
        if errors:
            raise errors[0]

    def _unregister(self, claim: PreparedClaim | None) -> None:
        if claim is not None and self.ledgers is not None:
            self.ledgers.unregister(claim.uid, claim.devices)

    def _forget_quota(self, uid: str) -> None:
        remove_quota_record(self.paths.quota_dir, uid)

    def quota(self, uid: str) -> Quota:
        """The live quota recorded for the claim (per device UUID), empty when none."""
        return read_quota_record(self.paths.quota_dir, uid)

    def _forget(self, uid: str) -> None:
        if self.store.get(uid) is not None:
            self.store.delete(uid)

    def write_files(self, claim: PreparedClaim) -> None:
        """Write the limits file, then the CDI spec that mounts it (the spec last: it makes it usable).

        One limits line, one board entry and one claim ledger per physical device, with the claim's
        recorded live quota applied (the allocation is then written as ``memory-max``/``cores-max``).
        Without ledgers (no shim library) neither the limits file nor the spec names them, so the
        container starts and each of its processes limits itself alone.
        """
        limits = claim_limits(claim.devices, self.quota(claim.uid))
        ledgers = self.ledgers is not None and self.ledgers.enabled()
        files = cdi.container_files if ledgers else None
        scheduling = {d.uuid: d.scheduling for d in self.catalog.physical.values()}
        path = limitsfile.write_limits(self.paths.limits_dir, claim.uid, limits, files, scheduling)
        if self.ledgers is not None and ledgers:
            self.ledgers.register(claim.uid, limits)
        names = cdi_names(claim.uid, (d.device for d in claim.devices))
        spec_devices = tuple(
            cdi.SpecDevice(
                name=name,
                device_type=d.device_type,
                index=d.index,
                minor=d.index if d.minor is None else d.minor,
                uuid=d.uuid,
            )
            for d, name in zip(claim.devices, names, strict=True)
        )
        with _tracer.start_as_current_span("cdi.write_spec") as span:
            spec = cdi.build_spec(self.layout, cdi.ClaimSpec(claim.uid, spec_devices, path, ledgers=ledgers))
            span.set_attribute("xpushare.cdi.version", spec["cdiVersion"])
            cdi.write_spec(self.paths.cdi_dir, claim.uid, spec)


def _annotate(devices: list[PreparedDevice]) -> None:
    span = trace.get_current_span()
    span.set_attribute("xpushare.devices", [d.device for d in devices])
    span.set_attribute("xpushare.memory_bytes", [d.memory_bytes for d in devices])
    span.set_attribute("xpushare.core_percent", [d.core_percent for d in devices])
