"""The allocation core: a depth-first, first-fit search over devices, as kube-scheduler's allocator does.

Pure and deterministic: given the same slices, classes, existing allocations, claims and node, it returns
the same result, including share IDs (derived from the claim, request and device, not random). It does
no I/O. Claims are allocated one after the other, requests in order, each device of a request tried in
pool/slice/device order; a dead end undoes the last pick and tries the next device (combinations, never
permutations, within one request). ``firstAvailable`` subrequests are tried in order. The first complete
solution wins. A step budget bounds pathological searches.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from celpy import celtypes

from api.errors import XPUShareError
from dra_driver.simulation.allocator.celenv import SelectorError, device_variable
from dra_driver.simulation.allocator.constraints import ConstraintTracker
from dra_driver.simulation.allocator.ledger import Ledger, Located, Pick
from dra_driver.simulation.allocator.model import Claim, DeviceClass, DeviceID, Node, Request
from dra_driver.simulation.allocator.pools import Pool, reachable_devices

__all__ = ["ClaimResult", "DeviceResult", "NoSolutionError", "Search", "share_id_for"]

_SHARE_NAMESPACE = uuid.UUID("6f1c7e52-6d1a-4c52-9a55-3c5e0b8f2a11")
_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


class NoSolutionError(XPUShareError):
    """The claims cannot be allocated on this node; the message says why, per claim and request."""


@dataclass(frozen=True, slots=True)
class DeviceResult:
    request: Request
    pick: Pick
    share_id: str = ""


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claim: Claim
    devices: tuple[DeviceResult, ...]
    chosen: tuple[Request, ...]  # the request or subrequest used, one per claim request


def share_id_for(claim: Claim, request: Request, located: Located, ordinal: int) -> str:
    """A UUID unique per claim, request and device, stable across runs (uuid5, not random)."""
    identity = claim.uid or claim.key
    return str(uuid.uuid5(_SHARE_NAMESPACE, f"{identity}/{request.result_name}/{located.id}/{ordinal}"))


@dataclass
class _Trace:
    """Why devices were turned down, per claim request, for the unschedulable message."""

    rejected: dict[tuple[int, str], dict[str, set[str]]] = field(default_factory=dict)
    matched: dict[tuple[int, str], int] = field(default_factory=dict)

    def reject(self, claim_index: int, request: Request, reason: str, device: str) -> None:
        per_request = self.rejected.setdefault((claim_index, request.result_name), {})
        per_request.setdefault(reason, set()).add(device)


@dataclass(frozen=True, slots=True)
class _Slot:
    """The request being filled: which claim and request, the alternative tried, its candidates."""

    claim_index: int
    request_index: int
    request: Request
    candidates: list[Located]


class Search:
    """One allocation attempt of a pod's claims on one node; use once."""

    def __init__(
        self,
        claims: Sequence[Claim],
        node: Node,
        *,
        pools: Sequence[Pool],
        classes: Mapping[str, DeviceClass],
        ledger: Ledger,
        matcher: Callable[[Request, DeviceClass, Located], bool],
        max_steps: int,
    ) -> None:
        self._claims = claims
        self._classes = classes
        self._ledger = ledger
        self._matcher = matcher
        self._budget = max_steps
        self._reachable = [
            Located(_device_id(pool, device.name), pool, s, device)
            for pool in pools
            if not pool.unusable
            for s, device in reachable_devices(pool, node)
        ]
        self._results: list[list[DeviceResult]] = [[] for _ in claims]
        self._chosen: list[list[Request]] = [[alternatives[0] for alternatives in c.requests] for c in claims]
        self._trackers = [[ConstraintTracker(k) for k in c.constraints] for c in claims]
        self._trace = _Trace()
        self._node = node
        self._candidate_cache: dict[tuple[int, str], list[Located]] = {}

    def run(self) -> tuple[ClaimResult, ...]:
        """The allocation of every claim, or NoSolutionError with the reasons."""
        if not self._solve(0, 0):
            raise NoSolutionError(self._explain())
        return tuple(
            ClaimResult(claim, tuple(self._results[i]), tuple(self._chosen[i]))
            for i, claim in enumerate(self._claims)
        )

    def _solve(self, ci: int, ri: int) -> bool:
        if ci == len(self._claims):
            return True
        claim = self._claims[ci]
        if ri == len(claim.requests):
            return self._solve(ci + 1, 0)
        for alternative in claim.requests[ri]:
            self._chosen[ci][ri] = alternative
            candidates = self._candidates(ci, alternative)
            if alternative.all_devices and not candidates:
                continue
            if self._fill(_Slot(ci, ri, alternative, candidates), 0, 0):
                return True
        return False

    def _fill(self, slot: _Slot, taken: int, start: int) -> bool:
        """Pick the request's next device at or after ``start``; combinations only, never permutations."""
        ci, request, candidates = slot.claim_index, slot.request, slot.candidates
        need = len(candidates) if request.all_devices else request.count
        if taken == need:
            return self._solve(ci, slot.request_index + 1)
        if request.all_devices:
            # "All" wants every matching device: there is exactly one way to try it.
            positions: range = range(taken, taken + 1)
        else:
            positions = range(start, len(candidates) - (need - taken) + 1)
        for index in positions:
            undo = self._take(ci, request, candidates[index])
            if undo is None:
                continue
            if self._fill(slot, taken + 1, index + 1):
                return True
            undo()
        return False

    def _candidates(self, ci: int, request: Request) -> list[Located]:
        key = (ci, request.result_name)
        if key not in self._candidate_cache:
            self._candidate_cache[key] = self._match_all(ci, request)
        return self._candidate_cache[key]

    def _match_all(self, ci: int, request: Request) -> list[Located]:
        device_class = self._classes.get(request.device_class)
        if device_class is None:
            raise NoSolutionError(
                f"claim {self._claims[ci].key}, request {request.result_name}: "
                f"device class {request.device_class} not found"
            )
        try:
            found = [loc for loc in self._reachable if self._matcher(request, device_class, loc)]
        except SelectorError as err:
            raise NoSolutionError(
                f"claim {self._claims[ci].key}, request {request.result_name}: {err}"
            ) from err
        self._trace.matched[(ci, request.result_name)] = len(found)
        return found

    def _take(self, ci: int, request: Request, located: Located) -> Callable[[], None] | None:
        self._budget -= 1
        if self._budget < 0:
            raise NoSolutionError("search limit reached: too many combinations to try")
        reason = _taint_blocks(request, located)
        pick = None
        if not reason:
            pick, reason = self._ledger.check(request, located)
        if pick is not None and not all(
            t.admits(request, located.device, located.id.driver) for t in self._trackers[ci]
        ):
            pick, reason = None, "constraint not satisfied"
        if pick is None:
            self._trace.reject(ci, request, reason, located.id.device)
            return None
        return self._apply(ci, request, pick)

    def _apply(self, ci: int, request: Request, pick: Pick) -> Callable[[], None]:
        located = pick.located
        undo_ledger = self._ledger.apply(request, pick)
        pushed = [t for t in self._trackers[ci] if t.push(request, located.device, located.id.driver)]
        results = self._results[ci]
        share = share_id_for(self._claims[ci], request, located, len(results)) if pick.shared else ""
        results.append(DeviceResult(request, pick, share))

        def undo() -> None:
            results.pop()
            for tracker in pushed:
                tracker.pop()
            undo_ledger()

        return undo

    def _explain(self) -> str:
        parts = []
        for ci, claim in enumerate(self._claims):
            for alternatives in claim.requests:
                for request in alternatives:
                    detail = self._explain_request(ci, request)
                    if detail:
                        parts.append(f"claim {claim.key}, request {request.result_name}: {detail}")
        return "; ".join(parts) or "cannot allocate all claims"

    def _explain_request(self, ci: int, request: Request) -> str:
        key = (ci, request.result_name)
        if key not in self._trace.matched:
            return ""
        matched = self._trace.matched[key]
        if matched == 0:
            return f"no device on node {self._node.name} matches the class and request selectors"
        rejected = self._trace.rejected.get(key, {})
        reasons = ", ".join(f"{why} ({', '.join(sorted(names))})" for why, names in sorted(rejected.items()))
        need = "all" if request.all_devices else str(request.count)
        return f"needs {need} of {matched} matching devices" + (
            f"; turned down: {reasons}" if reasons else ""
        )


def _device_id(pool: Pool, name: str) -> DeviceID:
    return DeviceID(pool.driver, pool.name, name)


def _taint_blocks(request: Request, located: Located) -> str:
    for taint in located.device.taints:
        if taint.effect in _BLOCKING_EFFECTS and not any(t.tolerates(taint) for t in request.tolerations):
            return f"untolerated taint {taint.key}={taint.value}:{taint.effect}"
    return ""


def device_variable_for(located: Located) -> celtypes.MapType:
    """The CEL ``device`` variable of a located device (the caller caches it per device)."""
    device = located.device
    capacity = {name: cap.value for name, cap in device.capacity.items()}
    return device_variable(located.id.driver, device.attributes, capacity, device.allow_multiple_allocations)
