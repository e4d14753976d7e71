"""The DRA gRPC service, served as ``v1`` and ``v1beta1`` from one implementation.

The two versions differ only in ``share_id`` (v1 only), so both servicers translate to and from the same
``DraService``. Each call gets a span (parent: the trace context the kubelet sent in gRPC metadata, when it
sent one) and each claim a child span; claims of one call are prepared in parallel, and a claim's failure
is that claim's ``error``, never the call's: the answer holds exactly one entry per requested claim.
Each claim's UID, name and namespace are checked (``kubeletplugin.names``) before anything else, since the
UID becomes file names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from api.errors import XPUShareError
from api.kubelet import dra_v1_grpc, dra_v1_pb2, dra_v1beta1_grpc, dra_v1beta1_pb2
from dra_driver.core.metrics import default_registry
from dra_driver.core.telemetry import tracer
from kubeletplugin.checkpoint import PreparedDevice
from kubeletplugin.metrics import NodeMetrics
from kubeletplugin.names import check_claim_name
from kubeletplugin.state import ClaimKey, ClaimPreparer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)
R = TypeVar("R")

Outcome = list[PreparedDevice] | str  # the devices, or the claim's error message


def _claim_keys(claims: Sequence[Any]) -> list[ClaimKey]:
    keys = {c.uid: ClaimKey(c.namespace, c.name, c.uid) for c in claims}
    return list(keys.values())


class DraService:
    """Runs prepare/unprepare for every claim of a call, in parallel, each in its own span."""

    def __init__(
        self, preparer: ClaimPreparer, max_parallel: int = 8, metrics: NodeMetrics | None = None,
        on_failed: Callable[[ClaimKey, str], None] | None = None,
    ) -> None:
        self.preparer = preparer
        self.metrics = metrics or NodeMetrics(default_registry())
        self.on_failed = on_failed  # told of each claim that failed to prepare, with its message
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="claim")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def prepare(self, keys: Sequence[ClaimKey]) -> dict[str, Outcome]:
        def run(key: ClaimKey) -> list[PreparedDevice]:
            check_claim_name(key.namespace, key.name, key.uid)
            return self.preparer.prepare(key)

        outcomes = self._each(keys, "prepare_claim", run)
        if self.on_failed is not None:
            for key in keys:
                outcome = outcomes[key.uid]
                if isinstance(outcome, str):
                    self.on_failed(key, outcome)
        return outcomes

    def unprepare(self, keys: Sequence[ClaimKey]) -> dict[str, str]:
        def run(key: ClaimKey) -> list[PreparedDevice]:
            check_claim_name(key.namespace, key.name, key.uid)
            self.preparer.unprepare(key)
            return []

        outcomes = self._each(keys, "unprepare_claim", run)
        return {uid: (o if isinstance(o, str) else "") for uid, o in outcomes.items()}

    def _each(
        self, keys: Sequence[ClaimKey], span_name: str, action: Callable[[ClaimKey], list[PreparedDevice]]
    ) -> dict[str, Outcome]:
        parent = otel_context.get_current()

        def one(key: ClaimKey) -> Outcome:
            token = otel_context.attach(parent)
            try:
                return _run_claim(span_name, key, action, self.metrics)
            finally:
                otel_context.detach(token)

        if len(keys) == 1:  # the common case: no thread hop
            return {keys[0].uid: one(keys[0])}
        futures = {key.uid: self._pool.submit(one, key) for key in keys}
        return {uid: future.result() for uid, future in futures.items()}


_OPERATIONS = {"prepare_claim": "prepare", "unprepare_claim": "unprepare"}


def _run_claim(
    span_name: str,
    key: ClaimKey,
    action: Callable[[ClaimKey], list[PreparedDevice]],
    metrics: NodeMetrics,
) -> Outcome:
    with metrics.timed(_OPERATIONS[span_name]) as attempt:
        devices_or_error = _claim_in_span(span_name, key, action)
        if isinstance(devices_or_error, BaseException):
            attempt.error = devices_or_error
            return _message(key, devices_or_error)
        return devices_or_error


def _message(key: ClaimKey, err: BaseException) -> str:
    return str(err) if isinstance(err, XPUShareError) else f"{key.ref}: internal error: {err!r}"


def _claim_in_span(
    span_name: str, key: ClaimKey, action: Callable[[ClaimKey], list[PreparedDevice]]
) -> list[PreparedDevice] | Exception:
    with _tracer.start_as_current_span(span_name) as span:
        span.set_attribute("k8s.namespace.name", key.namespace)
        span.set_attribute("xpushare.claim.name", key.name)
        span.set_attribute("xpushare.claim.uid", key.uid)
        try:
            devices = action(key)
        except XPUShareError as err:
            span.set_attribute("xpushare.outcome", "refused")
            span.set_status(trace.StatusCode.ERROR, str(err))
            log.warning("%s failed", span_name, extra={"claim_uid": key.uid, "error": str(err)})
            return err
        except Exception as err:  # a bug must fail this claim, not the kubelet's whole call
            span.record_exception(err)
            span.set_status(trace.StatusCode.ERROR, repr(err))
            log.exception("%s crashed", span_name, extra={"claim_uid": key.uid})
            return err
        span.set_attribute("xpushare.outcome", "ok")
        log.debug("%s done", span_name, extra={"claim_uid": key.uid})
        return devices


def _traced(method: str, grpc_context: grpc.ServicerContext, body: Callable[[], R]) -> R:
    """Run ``body`` in the call's span, parented by the trace context found in the gRPC metadata."""
    metadata = {key: value for key, value in grpc_context.invocation_metadata() if isinstance(value, str)}
    token = otel_context.attach(propagate.extract(metadata))
    try:
        with _tracer.start_as_current_span(method, kind=trace.SpanKind.SERVER):
            return body()
    finally:
        otel_context.detach(token)


class _Servicer:
    """One API version's servicer; ``_pb2`` holds its messages, ``_share_ids`` whether devices carry one.

    The versions' messages have the same fields but for ``share_id``, so one translation serves both.
    """

    _pb2: Any
    _share_ids: bool

    def __init__(self, service: DraService) -> None:
        self._service = service

    def NodePrepareResources(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 - gRPC name
        def body() -> Any:
            response = self._pb2.NodePrepareResourcesResponse()
            for uid, outcome in self._service.prepare(_claim_keys(request.claims)).items():
                entry = response.claims[uid]
                if isinstance(outcome, str):
                    entry.error = outcome
                    continue
                for d in outcome:
                    device = entry.devices.add(
                        request_names=d.request_names,
                        pool_name=d.pool,
                        device_name=d.device,
                        cdi_device_ids=d.cdi_device_ids,
                    )
                    if self._share_ids and d.share_id is not None:
                        device.share_id = d.share_id
            return response

        return _traced("NodePrepareResources", context, body)

    def NodeUnprepareResources(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        def body() -> Any:
            response = self._pb2.NodeUnprepareResourcesResponse()
            for uid, error in self._service.unprepare(_claim_keys(request.claims)).items():
                response.claims[uid].error = error
            return response

        return _traced("NodeUnprepareResources", context, body)


class DraV1Servicer(_Servicer, dra_v1_grpc.DRAPluginServicer):
    _pb2 = dra_v1_pb2
    _share_ids = True


class DraV1beta1Servicer(_Servicer, dra_v1beta1_grpc.DRAPluginServicer):
    _pb2 = dra_v1beta1_pb2
    _share_ids = False


def add_dra_services(server: grpc.Server, service: DraService) -> None:
    dra_v1_grpc.add_DRAPluginServicer_to_server(DraV1Servicer(service), server)
    dra_v1beta1_grpc.add_DRAPluginServicer_to_server(DraV1beta1Servicer(service), server)
