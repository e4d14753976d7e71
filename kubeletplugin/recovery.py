"""Start-up recovery: bring the node back to what the checkpoint says, and the checkpoint back to reality.

The kubelet never re-prepares a running pod's claim after a plugin restart, and the CDI directory is tmpfs,
so on every start the plugin:

- re-creates the CDI spec and limits file of every claim the checkpoint holds as prepared;
- rolls back claims a crash left in ``PrepareStarted``;
- unprepares claims that were deleted (or re-created under a new UID) while it was down;
- removes spec and limits files that no checkpointed claim owns;
- on a corrupt checkpoint (any record that cannot be read or trusted, a directory named like a record
  included): logs it, posts a Warning event on the Node, and rebuilds the checkpoint from
  the API server (every claim allocated on this node and reserved for a pod), instead of crash-looping;
- the same for unreadable quota records: reported, removed, re-applied from the claims' annotations.

When the API server cannot be reached, nothing is deleted: a claim is only unprepared on proof that it
is gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from api.errors import XPUShareError
from dra_driver.core.fileio import remove_entry
from dra_driver.core.kube import ApiError
from dra_driver.core.telemetry import tracer
from kubeletplugin import cdi, limitsfile
from kubeletplugin.accounting import holdings_of
from kubeletplugin.checkpoint import ClaimState, PreparedClaim
from kubeletplugin.physical import claim_limits
from kubeletplugin.quota import damaged_quota_records
from kubeletplugin.state import ClaimKey, ClaimPreparer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


@dataclass(slots=True)
class RecoveryReport:
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    unrestored: list[str] = field(default_factory=list)  # kept prepared, but a file could not be rewritten
    corrupt: str | None = None
    corrupt_quota: str | None = None
    rebooted: bool = False


def _load(preparer: ClaimPreparer, node_name: str, report: RecoveryReport) -> dict[str, PreparedClaim]:
    claims = preparer.store.load()
    corrupt = preparer.store.corrupt
    if corrupt:
        details = "; ".join(f"{name}: {reason}" for name, reason in sorted(corrupt.items()))
        report.corrupt = details
        message = (
            f"checkpoint {preparer.store.path}: {len(corrupt)} corrupt record(s) ({details[:700]}); "
            "rebuilding them from the API server"
        )
        log.error("checkpoint corrupt; rebuilding from the API server", extra={"records": details})
        preparer.reader.node_event(node_name, "CheckpointCorrupt", message)
        preparer.store.discard_corrupt()
    return claims


def _check_quota_records(preparer: ClaimPreparer, node_name: str, report: RecoveryReport) -> None:
    """Report and remove quota records that cannot be read (the claims then run with their whole
    allocation until the quota watcher re-applies their ``xpushare.io/quota`` annotation from the API
    server); left in place, one would fail every later write of that claim's quota."""
    directory = preparer.paths.quota_dir
    damaged = damaged_quota_records(directory)
    if not damaged:
        return
    details = "; ".join(f"{name}: {reason}" for name, reason in damaged.items())
    report.corrupt_quota = details
    log.error("quota records corrupt; removed", extra={"records": details})
    preparer.reader.node_event(
        node_name,
        "QuotaRecordCorrupt",
        f"quota records {directory}: {len(damaged)} corrupt record(s) ({details[:700]}); removed, the "
        "claims' quota annotations are applied again",
    )
    for name in damaged:
        try:
            remove_entry(directory / name)
        except OSError as err:
            log.error("corrupt quota record not removed", extra={"record": name, "error": str(err)})


def _live_claims(preparer: ClaimPreparer) -> dict[str, dict[str, Any]] | None:
    try:
        return {c["metadata"]["uid"]: c for c in preparer.reader.list_claims()}
    except ApiError as err:
        log.warning("API server unreachable; keeping every checkpointed claim", extra={"error": str(err)})
        return None


def _ours_here(preparer: ClaimPreparer, obj: dict[str, Any]) -> bool:
    """Allocated on this node's pool to our driver, and in use by a pod."""
    status = obj.get("status") or {}
    results = ((status.get("allocation") or {}).get("devices") or {}).get("results") or []
    mine = any(r.get("driver") == preparer.driver and r.get("pool") == preparer.pool for r in results)
    return mine and bool(status.get("reservedFor"))


def _restore(
    preparer: ClaimPreparer,
    claims: dict[str, PreparedClaim],
    live: dict[str, Any] | None,
    report: RecoveryReport,
) -> None:
    for uid, claim in sorted(claims.items()):
        key = ClaimKey(claim.namespace, claim.name, uid)
        gone = live is not None and uid not in live
        if claim.state is not ClaimState.PREPARE_COMPLETED or gone:
            preparer.unprepare(key)
            report.removed.append(uid)
            log.info(
                "claim unprepared at start", extra={"claim_uid": uid, "reason": "gone" if gone else "half"}
            )
            continue
        preparer.accounting.restore(uid, holdings_of(claim))
        try:
            preparer.write_files(claim)
        except XPUShareError as err:  # one claim's files (its ledger, say) never stop the plugin's start
            log.error("claim files not rewritten at start", extra={"claim_uid": uid, "error": str(err)})
            report.unrestored.append(uid)
            continue
        report.restored.append(uid)


def _sweep(preparer: ClaimPreparer) -> None:
    """Remove files of ours that no checkpointed claim owns (a crash between write and record)."""
    known = set(preparer.store.claims())
    kind = preparer.layout.kind
    for uid in cdi.listed_claims(preparer.paths.cdi_dir, kind) - known:
        cdi.remove_spec(preparer.paths.cdi_dir, uid, kind)
    for uid in limitsfile.listed_claims(preparer.paths.limits_dir) - known:
        limitsfile.remove_limits(preparer.paths.limits_dir, uid)
    if preparer.ledgers is not None:  # the boards refilled from the checkpoint (rebuilt ones included)
        preparer.ledgers.sweep({
            uid: claim_limits(claim.devices, preparer.quota(uid))
            for uid in known if (claim := preparer.store.get(uid)) is not None
        })


def _rebuild(preparer: ClaimPreparer, live: dict[str, dict[str, Any]] | None, report: RecoveryReport) -> None:
    known = set(preparer.store.claims())
    for uid, obj in sorted((live or {}).items()):
        if uid in known or not _ours_here(preparer, obj):
            continue
        meta = obj["metadata"]
        try:
            preparer.prepare(ClaimKey(meta.get("namespace", ""), meta.get("name", ""), uid))
        except XPUShareError as err:
            log.error("claim could not be rebuilt", extra={"claim_uid": uid, "error": str(err)})
            continue
        report.rebuilt.append(uid)


def recover(preparer: ClaimPreparer, node_name: str) -> RecoveryReport:
    """Run start-up recovery; call before the DRA socket accepts calls."""
    report = RecoveryReport()
    with _tracer.start_as_current_span("plugin.recover") as span:
        claims = _load(preparer, node_name, report)
        _check_quota_records(preparer, node_name, report)
        previous = preparer.store.previous_boot_id
        report.rebooted = previous is not None and previous != preparer.store.boot_id
        if report.rebooted:
            log.info("node rebooted since the checkpoint was written; device ledgers start empty")
        live = _live_claims(preparer)
        _restore(preparer, claims, live, report)
        _sweep(preparer)
        if report.corrupt is not None:
            _rebuild(preparer, live, report)
        span.set_attribute("xpushare.restored", len(report.restored))
        span.set_attribute("xpushare.removed", len(report.removed))
        span.set_attribute("xpushare.rebuilt", len(report.rebuilt))
    log.info(
        "recovery done",
        extra={
            "restored": len(report.restored),
            "removed": len(report.removed),
            "rebuilt": len(report.rebuilt),
        },
    )
    return report
