"""This node's ResourceSlices against the node itself, for ``xpushare diagnose``.

The scheduler allocates only from the newest generation of a pool, and holds back where that generation
is incomplete, so the pool must be complete and current; it must offer each device discovery finds (and
no other) under the same UUID, keep offering the devices that prepared claims hold, and carry the
unhealthy taint exactly on the devices that are unhealthy now. A device is found in the slices by its
name, or for a partition by the ``parent`` attribute that names its device (partitioned mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.settings import UNHEALTHY_TAINT_KEY
from controller.slices.attributes import MAX_STRING, qualified
from dra_driver.core.devices import Device, Health
from dra_driver.core.kubetypes import Obj, dig
from kubeletplugin.checkpoint import PreparedClaim
from kubeletplugin.cluster_reader import items, text
from kubeletplugin.findings import Finding, Severity

REPUBLISH = (
    "the plugin publishes at its start and on health changes: restart it, and look at its log for publish "
    'errors (metric xpushare_slice_publishes_total{outcome="failed"})'
)


@dataclass(frozen=True, slots=True)
class Published:
    """A physical device as the current generation of the node's pool offers it."""

    name: str
    uuid: str  # "" when the entry carries no uuid attribute
    type: str
    tainted: bool  # one of its entries carries the unhealthy taint
    slice: str


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def pool_findings(node: str, slices: Sequence[Obj]) -> tuple[list[Finding], dict[str, Published]]:
    """Findings about the pool named after ``node`` (complete, current; no other pool on the node) and
    the devices its current generation offers, by name."""
    found: list[Finding] = []
    ours = [s for s in slices if text(s, "spec", "pool", "name") == node]
    for other in (s for s in slices if text(s, "spec", "pool", "name") != node):
        found.append(
            Finding(
                Severity.WARNING,
                f"ResourceSlice {text(other, 'metadata', 'name')}",
                f"of this node and driver, but in pool {text(other, 'spec', 'pool', 'name')!r}, not the "
                f"plugin's pool {node!r}",
                "written by hand or by another plugin: the scheduler offers its devices too; delete it",
            )
        )
    if not ours:
        found.append(
            Finding(
                Severity.ERROR,
                f"ResourceSlices of node {node}",
                "none: the scheduler places no claim of this driver on the node",
                f"is the plugin running on the node, and publishing (not --no-publish)? {REPUBLISH}",
            )
        )
        return found, {}
    generations = [_int(dig(s, "spec", "pool", "generation")) or 0 for s in ours]
    current = max(generations)
    newest = [s for s, g in zip(ours, generations, strict=True) if g == current]
    for obj, generation in zip(ours, generations, strict=True):
        if generation < current:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"ResourceSlice {text(obj, 'metadata', 'name')}",
                    f"of pool generation {generation}, the pool is at {current}: the scheduler ignores it",
                    "left by a publish that stopped half way; the plugin deletes it at its next publish "
                    "(restart it), or delete it by hand",
                )
            )
    expected = max(_int(dig(s, "spec", "pool", "resourceSliceCount")) or 0 for s in newest)
    if expected != len(newest):
        found.append(
            Finding(
                Severity.ERROR,
                f"pool {node}",
                f"incomplete: {len(newest)} of {expected} ResourceSlices of generation {current}; the "
                "scheduler waits for the rest before it allocates some claims from it",
                f"a publish stopped half way, or a slice was deleted by hand. {REPUBLISH}",
            )
        )
    published = _published(newest)
    found.append(
        Finding(
            Severity.INFO,
            f"pool {node}",
            f"generation {current} in {len(newest)} ResourceSlice(s), offering "
            f"{', '.join(sorted(published)) or 'no device'}",
            "-",
        )
    )
    return found, published


def _published(slices: Sequence[Obj]) -> dict[str, Published]:
    published: dict[str, Published] = {}
    for obj in slices:
        name = text(obj, "metadata", "name")
        for entry in items(obj, "spec", "devices"):
            device = text(entry, "attributes", qualified("parent"), "string") or text(entry, "name")
            tainted = any(text(t, "key") == UNHEALTHY_TAINT_KEY for t in items(entry, "taints"))
            known = published.get(device)
            published[device] = Published(
                device,
                text(entry, "attributes", qualified("uuid"), "string"),
                text(entry, "attributes", qualified("type"), "string"),
                tainted or (known is not None and known.tainted),
                known.slice if known is not None else name,
            )
    return published


def device_findings(published: Mapping[str, Published], devices: Sequence[Device]) -> list[Finding]:
    """The devices discovery found against the ones the slices offer: missing, extra, another UUID, and
    the unhealthy taint where it should be and nowhere else."""
    found: list[Finding] = []
    for device in devices:
        entry, subject = published.get(device.name), f"device {device.name} ({device.uuid})"
        if entry is None:
            if device.health is not Health.UNHEALTHY:  # an unhealthy one is left out where taints are off
                found.append(
                    Finding(
                        Severity.ERROR,
                        subject,
                        "found on this node but not in its ResourceSlices: no claim can get it",
                        REPUBLISH,
                    )
                )
            continue
        if entry.uuid and entry.uuid != device.uuid[:MAX_STRING]:
            found.append(
                Finding(
                    Severity.ERROR,
                    subject,
                    f"ResourceSlice {entry.slice} offers {device.name} as {entry.uuid}: claims allocated on "
                    "it get another chip than the scheduler chose",
                    f"the devices were renumbered (a chip replaced, gone or back). {REPUBLISH}",
                )
            )
        if device.health is Health.UNHEALTHY and not entry.tainted:
            found.append(
                Finding(
                    Severity.ERROR,
                    subject,
                    f"unhealthy ({device.health_message or 'no message'}) but offered in ResourceSlice "
                    f"{entry.slice} without the {UNHEALTHY_TAINT_KEY} taint: the scheduler still places "
                    "claims on it",
                    "the plugin taints it at its next health check; if the taint never comes, the API "
                    "server drops device taints (gate DRADeviceTaints off) and the plugin should leave the "
                    "device out: restart it",
                )
            )
        if device.health is not Health.UNHEALTHY and entry.tainted:
            found.append(
                Finding(
                    Severity.WARNING,
                    subject,
                    f"healthy, but ResourceSlice {entry.slice} still carries its {UNHEALTHY_TAINT_KEY} "
                    "taint: no new claim lands on it",
                    "the plugin lifts the taint at its next health check after the device recovers; "
                    "restart it if the taint stays",
                )
            )
    names = {device.name for device in devices}
    for entry in (e for name, e in sorted(published.items()) if name not in names):
        found.append(
            Finding(
                Severity.ERROR,
                f"device {entry.name}",
                f"offered in ResourceSlice {entry.slice} ({entry.uuid or 'no uuid'}), but discovery does "
                "not find it on this node: claims allocated on it fail to prepare",
                f"the device is gone or its driver lost it (npu-smi info / nvidia-smi). {REPUBLISH}",
            )
        )
    return found


def held_findings(
    published: Mapping[str, Published], prepared: Mapping[str, PreparedClaim], node: str
) -> list[Finding]:
    """Devices that prepared claims hold but the slices no longer offer."""
    offered = {e.uuid for e in published.values() if e.uuid} | set(published)
    found = []
    for claim in sorted(prepared.values(), key=lambda c: (c.namespace, c.name)):
        for held in sorted({(d.device, d.uuid) for d in claim.devices if d.pool == node}):
            if held[1][:MAX_STRING] not in offered and held[0] not in offered:
                found.append(
                    Finding(
                        Severity.WARNING,
                        f"claim {claim.namespace}/{claim.name} ({claim.uid})",
                        f"prepared on {held[0]} ({held[1]}), which the node's ResourceSlices no longer offer",
                        "the device left the pool (gone, or renamed at a plugin restart); its containers "
                        "keep running on it until the pod ends",
                    )
                )
    return found
