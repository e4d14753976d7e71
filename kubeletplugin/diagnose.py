"""What is wrong on this node's side of XPUShare, and what to do about it (``xpushare diagnose``).

It reads the node's files only, as ``xpushare status`` does (the plugin's checkpoint, the limits files,
the CDI specs, the device boards and the claim ledgers; ledgers by one bounded pread, never a lock), so
it runs beside a busy node and without an API server. Every finding names what it is about, what is
wrong and what to do; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from api.errors import XPUShareError
from dra_driver.core.fileio import read_regular_file
from kubeletplugin.checkpoint import CheckpointError, PreparedClaim, decode
from kubeletplugin.checkpoint_store import MAX_RECORD_BYTES
from kubeletplugin.findings import Finding, Severity, ordered
from kubeletplugin.paths import RECORD_SUFFIX, NodePaths
from kubeletplugin.status import prepared_claims
from shim import MAX_CLAIMS_PER_DEVICE, board_path
from shim.ledger import Board, LedgerError, read_claim_usage
from shim.limits import read_limits_file

NEARLY_FULL = 0.9  # a board this full is reported: the next claims on the device may be refused


def diagnose(paths: NodePaths) -> list[Finding]:
    """Every finding on the node, errors first."""
    claims = prepared_claims(paths)
    findings = [*_damaged_records(paths), *_boards(paths, claims)]
    for claim in sorted(claims.values(), key=lambda c: (c.namespace, c.name, c.uid)):
        findings += _claim(paths, claim)
    return ordered(findings)


def _damaged_records(paths: NodePaths) -> Iterable[Finding]:
    directory = paths.checkpoint_dir
    if not directory.is_dir():
        return
    for record in sorted(directory.glob(f"*{RECORD_SUFFIX}")):
        try:
            decode(read_regular_file(record, MAX_RECORD_BYTES))
        except (OSError, CheckpointError, ValueError, RecursionError) as err:
            yield Finding(Severity.ERROR, f"checkpoint record {record.name}", f"unreadable: {err}",
                          "the plugin sets it aside at its next start and the kubelet's retry prepares the "
                          "claim again")


def _claim(paths: NodePaths, claim: PreparedClaim) -> list[Finding]:
    subject = f"claim {claim.namespace}/{claim.name} ({claim.uid})"
    found: list[Finding] = []
    uuids = sorted({d.uuid for d in claim.devices})
    try:
        limits = read_limits_file(paths.limits_file(claim.uid))
        named = {d.uuid for d in limits.devices}
        if named != set(uuids):
            found.append(Finding(Severity.ERROR, subject,
                                 f"its limits file names devices {sorted(named)}, the checkpoint {uuids}",
                                 "restart the plugin: it rewrites every prepared claim's files"))
    except (XPUShareError, OSError, ValueError) as err:
        found.append(Finding(Severity.ERROR, subject, f"limits file unusable: {err}",
                             "containers started now get no device memory (the shim fails closed); "
                             "restart the plugin, which rewrites it"))
    if not any(paths.cdi_dir.glob(f"*{claim.uid}*")):
        found.append(Finding(Severity.ERROR, subject, f"no CDI spec for it in {paths.cdi_dir}",
                             "its containers cannot start; the kubelet's next prepare writes it again"))
    for uuid in uuids:
        found += _claim_on_device(paths, claim.uid, uuid, subject)
    return found


def _claim_on_device(paths: NodePaths, uid: str, uuid: str, subject: str) -> list[Finding]:
    found: list[Finding] = []
    try:
        with Board.read_only(paths.board(uuid)) as board:
            entry = board.entry(uid)
    except (XPUShareError, OSError, ValueError) as err:
        return [Finding(Severity.ERROR, f"device {uuid}", f"board unusable: {err}",
                        "restart the plugin: it rebuilds boards from the checkpoint")]
    if entry is None:
        found.append(Finding(Severity.ERROR, subject, f"no entry on the board of {uuid}",
                             "running shims cannot see its live limits or its peers; restart the plugin"))
    try:
        usage = read_claim_usage(paths.claim_ledger(uuid, uid))
    except (LedgerError, XPUShareError, OSError, ValueError):
        usage = None
    if usage is None or usage.key != uid:
        found.append(Finding(Severity.WARNING, subject, f"its ledger of {uuid} cannot be read",
                             "damaged by its tenant or of another version: its processes limit themselves "
                             "alone and their use is not shown; it is replaced when the claim is prepared "
                             "again"))
        return found
    if usage.refused_allocs:
        found.append(Finding(Severity.WARNING, subject,
                             f"{usage.refused_allocs} allocation(s) on {uuid} refused at its memory limit "
                             f"of {usage.limit_bytes} bytes ({usage.refused_bytes} bytes asked)",
                             "raise the claim's memory (its request, or xpushare quota up to the "
                             "allocation)"))
    if usage.limit_bytes and usage.used_bytes > usage.limit_bytes:
        found.append(Finding(Severity.WARNING, subject,
                             f"uses {usage.used_bytes} bytes on {uuid}, over its limit of "
                             f"{usage.limit_bytes}",
                             "its quota was lowered below its use: new allocations are refused until use "
                             "drops"))
    return found


def _boards(paths: NodePaths, claims: Mapping[str, PreparedClaim]) -> Iterable[Finding]:
    devices_dir = paths.devices_dir
    if not devices_dir.is_dir():
        return
    for device_dir in sorted(p for p in devices_dir.iterdir() if p.is_dir()):
        try:
            with Board.read_only(board_path(device_dir)) as board:
                entries, uuid = board.entries(), board.uuid
        except (XPUShareError, OSError, ValueError):
            continue  # reported per claim where one uses the device
        for entry in entries:
            if entry.key not in claims:
                yield Finding(Severity.WARNING, f"device {uuid}",
                              f"board entry of claim {entry.key}, which is not prepared on this node",
                              "left by an unprepare that failed half way: the plugin removes it at its "
                              "next start; until then it holds one of the device's entries")
        if len(entries) >= NEARLY_FULL * MAX_CLAIMS_PER_DEVICE:
            yield Finding(Severity.WARNING, f"device {uuid}",
                          f"{len(entries)} of {MAX_CLAIMS_PER_DEVICE} board entries used",
                          "the next claims on it are refused at prepare; spread claims over devices")


def render(findings: list[Finding], claims: int) -> str:
    """Problems with their fixes, then the facts looked at; a line when there are no problems."""
    lines = []
    if not any(f.severity is not Severity.INFO for f in findings):
        lines.append(f"no problems found ({claims} claims prepared on this node)")
    for f in findings:
        hint = "" if f.hint == "-" else f"\n        -> {f.hint}"
        lines.append(f"{f.severity.value.upper():<8}{f.subject}: {f.message}{hint}")
    return "\n".join(lines)
