"""SlicePublisher: keeps one node's pool of ResourceSlices equal to what discovery sees.

Each node's plugin runs one for its own pool (only the node sees its hardware). A publish lists the
pool, builds the desired slices with the pure ``controller.slices`` builder, and writes only the
difference: obsolete slices deleted first, then updates and creates under a bumped pool generation.
Nothing is written when nothing changed. Conflicts and server errors are retried with backoff.

In ``auto`` mode the publisher starts with ``consumable`` and compares what it wrote with what the API
server kept; when the server dropped the mode's gated fields it falls back to the next mode
(consumable -> partitioned -> exclusive), loudly: a warning log line, a Warning Event on the Node, and
the ``xpushare_slice_mode_fallbacks_total`` counter. Dropped taints only turn taints off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from api.errors import XPUShareError
from controller.publisher.diff import Plan, plan_pool
from controller.publisher.events import NodeEvents
from controller.publisher.gates import CONSUMABLE, PARTITIONED, TAINTS, dropped_features, strip_features
from controller.settings import FALLBACK_ORDER, RetrySettings, SliceMode, SliceSettings
from controller.slices import build_slices
from controller.slices.build import MODE_LABEL
from dra_driver.core.devices import Device, Health
from dra_driver.core.kube import RESOURCE_SLICES, ApiError, KubeApi, with_retries
from dra_driver.core.kubetypes import Obj
from dra_driver.core.metrics import Registry, default_registry
from dra_driver.core.telemetry import tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

_MODE_FEATURE = {SliceMode.CONSUMABLE: CONSUMABLE, SliceMode.PARTITIONED: PARTITIONED}


class PublishError(XPUShareError):
    """The pool could not be brought up to date (after retries)."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What one publish did: ``writes`` counts API writes (0 when the pool was already right)."""

    node: str
    mode: SliceMode
    generation: int
    slices: int
    devices: int
    deleted: int
    updated: int
    created: int

    @property
    def writes(self) -> int:
        return self.deleted + self.updated + self.created


def pool_selector(node_name: str, driver_name: str) -> str:
    return f"spec.nodeName={node_name},spec.driver={driver_name}"


class SlicePublisher:
    """Publishes one node's pool; keeps the mode it settled on across calls (``auto`` falls back once)."""

    def __init__(
        self,
        api: KubeApi,
        node_name: str,
        settings: SliceSettings,
        *,
        node_uid: str | None = None,
        retry: RetrySettings | None = None,
        registry: Registry | None = None,
        events: NodeEvents | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.node_name = node_name
        self.node_uid = node_uid
        self.settings = settings
        self.retry = retry or RetrySettings()
        self.events = events if events is not None else NodeEvents(api)
        self.sleep = sleep
        self.mode: SliceMode = SliceMode.CONSUMABLE if settings.mode is SliceMode.AUTO else settings.mode
        self.taints = settings.device_taints
        self._build_settings = settings
        self._unsupported: set[str] = set()  # features of an explicit mode that the server drops
        self._started = False
        self._lock = threading.Lock()  # health changes and resyncs may publish from different threads
        metrics = registry or default_registry()
        self._fallbacks = metrics.counter(
            "xpushare_slice_mode_fallbacks_total",
            "Slice mode fallbacks because the API server dropped fields",
            labels=("node", "from_mode", "to_mode"),
        )
        self._publishes = metrics.counter("xpushare_slice_publishes_total", "Slice publishes by outcome",
                                          labels=("node", "outcome"))

    def desired(self, devices: Sequence[Device]) -> list[Obj]:
        """The slices this publisher would write now (generation 0).

        Where taints are off (or the server drops them), unhealthy devices are left out instead, so
        the scheduler never picks them.
        """
        if not self.taints:
            devices = [device for device in devices if device.health is not Health.UNHEALTHY]
        if self._build_settings.device_taints != self.taints:
            self._build_settings = replace(self.settings, device_taints=self.taints)
        slices = build_slices(
            self.node_name, devices, self.mode, self._build_settings, node_uid=self.node_uid
        )
        return strip_features(slices, self._unsupported) if self._unsupported else slices

    def list_pool(self) -> list[Obj]:
        return self.api.list(
            RESOURCE_SLICES, fieldSelector=pool_selector(self.node_name, self.settings.driver_name)
        )

    def publish(self, devices: Sequence[Device], stored: Sequence[Obj] | None = None) -> PublishResult:
        """Bring the pool in line with ``devices``; ``stored`` may pass an already listed pool."""
        with self._lock, _tracer.start_as_current_span("xpushare.publish_slices") as span:
            span.set_attribute("xpushare.node", self.node_name)
            span.set_attribute("xpushare.devices", len(devices))
            pending = [stored]  # the caller's listing serves the first attempt only; retries list again

            def attempt() -> PublishResult:
                return self._publish(devices, pending.pop() if pending else None)

            try:
                result = with_retries(
                    attempt, f"publish slices of node {self.node_name}", self.retry, self.sleep
                )
            except ApiError as err:
                self._publishes.inc(node=self.node_name, outcome="failed")
                span.set_attribute("xpushare.outcome", "failed")
                raise PublishError(f"publish ResourceSlices of node {self.node_name}: {err}") from err
            outcome = "written" if result.writes else "unchanged"
            self._publishes.inc(node=self.node_name, outcome=outcome)
            for key, value in (("mode", result.mode.value), ("slices", result.slices), ("outcome", outcome)):
                span.set_attribute(f"xpushare.{key}", value)
            span.set_attribute("xpushare.writes", result.writes)
            return result

    def _publish(self, devices: Sequence[Device], stored: Sequence[Obj] | None) -> PublishResult:
        current = list(stored) if stored is not None else self.list_pool()
        if not self._started:
            self._started = True
            self._resume_fallback(current)
        while True:
            desired = self.desired(devices)
            plan = plan_pool(desired, current)
            if plan.empty:
                return self._result(plan, desired, devices)
            try:
                returned = self._apply(plan)
            except ApiError as err:
                if err.status == 422 and self._can_fall_back():
                    self._fall_back(f"the API server rejected {self.mode.value} slices: {err}")
                    current = self.list_pool()
                    continue
                raise
            dropped = dropped_features(zip(plan.writes, returned, strict=True))
            if not self._react_to_dropped(dropped):
                return self._result(plan, desired, devices)
            current = self.list_pool()

    def _apply(self, plan: Plan) -> list[Obj]:
        for obj in plan.deletes:
            self.api.delete(f"{RESOURCE_SLICES}/{obj['metadata']['name']}")
        returned = [
            self.api.replace(f"{RESOURCE_SLICES}/{obj['metadata']['name']}", obj) for obj in plan.updates
        ]
        returned.extend(self.api.create(RESOURCE_SLICES, obj) for obj in plan.creates)
        log.info(
            "published slices",
            extra={
                "node": self.node_name,
                "mode": self.mode.value,
                "generation": plan.generation,
                "slices_deleted": len(plan.deletes),
                "slices_updated": len(plan.updates),
                "slices_created": len(plan.creates),
            },
        )
        return returned

    def _react_to_dropped(self, dropped: set[str]) -> bool:
        """Adapt to fields the server dropped; True when the pool must be written again."""
        again = False
        if TAINTS in dropped and self.taints:
            self.taints = False
            log.warning(
                "the API server dropped device taints; publishing without them",
                extra={"node": self.node_name},
            )
            again = True
        feature = _MODE_FEATURE.get(self.mode)
        if feature in dropped:
            if self._can_fall_back():
                self._fall_back(
                    f"the API server dropped the fields of {self.mode.value} mode (feature gate off?)"
                )
                return True
            self._report_degraded(feature or "")
        return again

    def _report_degraded(self, feature: str) -> None:
        """An explicit mode the server cannot keep: say so once, then stop writing the dropped fields."""
        self._unsupported.add(feature)
        message = f"the API server dropped the fields of {feature} mode, which is configured explicitly"
        log.error("slices degraded: %s", message, extra={"node": self.node_name})
        self.events.warning(self.node_name, self.node_uid, "SliceModeUnsupported", message)

    def _resume_fallback(self, stored: Sequence[Obj]) -> None:
        """In ``auto``, start from a mode an earlier run fell back to, so a restart writes nothing.

        The mode is read from the slices' label. A cluster whose gates were turned on later is probed
        again once its pool is gone (the kubelet deletes it when the plugin stays away).
        """
        if self.settings.mode is not SliceMode.AUTO:
            return
        found = {((obj.get("metadata") or {}).get("labels") or {}).get(MODE_LABEL) for obj in stored}
        lower = [mode for mode in FALLBACK_ORDER if mode.value in found]
        if lower and FALLBACK_ORDER.index(lower[-1]) > FALLBACK_ORDER.index(self.mode):
            self.mode = lower[-1]
            log.info(
                "resuming the slice mode found in the pool",
                extra={"node": self.node_name, "mode": self.mode.value},
            )

    def _can_fall_back(self) -> bool:
        return self.settings.mode is SliceMode.AUTO and self.mode is not FALLBACK_ORDER[-1]

    def _fall_back(self, why: str) -> None:
        old = self.mode
        self.mode = FALLBACK_ORDER[FALLBACK_ORDER.index(old) + 1]
        message = f"{why}; falling back from {old.value} to {self.mode.value} slices"
        if old is SliceMode.CONSUMABLE:
            # The same server drops capacity.requests from claims: say so where operators look.
            message += (
                "; this API server also drops capacity.requests from claims, so claims must select a size "
                'with CEL on device.capacity["<driver>"] (docs/configuration.md) or get any partition'
            )
        log.warning("slice mode fallback: %s", message, extra={"node": self.node_name})
        self._fallbacks.inc(node=self.node_name, from_mode=old.value, to_mode=self.mode.value)
        self.events.warning(self.node_name, self.node_uid, "SliceModeFallback", message)

    def _result(self, plan: Plan, desired: list[Obj], devices: Sequence[Device]) -> PublishResult:
        return PublishResult(
            node=self.node_name,
            mode=self.mode,
            generation=plan.generation,
            slices=len(desired),
            devices=len(devices),
            deleted=len(plan.deletes),
            updated=len(plan.updates),
            created=len(plan.creates),
        )


def list_pools(api: KubeApi, driver_name: str) -> dict[str, list[Obj]]:
    """Every node-local pool of the driver with one list call, keyed by node name.

    A process that publishes many pools (the simulator) passes each node's entry to ``publish`` instead
    of paying one list call per node.
    """
    pools: dict[str, list[Obj]] = {}
    for obj in api.list(RESOURCE_SLICES, fieldSelector=f"spec.driver={driver_name}"):
        node = (obj.get("spec") or {}).get("nodeName")
        if node:
            pools.setdefault(node, []).append(obj)
    return pools
