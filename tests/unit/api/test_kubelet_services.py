"""The RPC paths the kubelet dials exist, exactly, and our generated servers answer them on a real socket.

The kubelet calls ``/<proto package>.<service>/<method>``; a typo in a package or service name would let
every unit test pass and fail only on a node. The servers below are the generated ``add_*_to_server``
registrations, called with hand-built request bytes through a raw channel, as the kubelet would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest

from api.kubelet import (
    DRA_V1_SERVICE,
    DRA_V1BETA1_SERVICE,
    HEALTH_V1ALPHA1_SERVICE,
    REGISTRATION_SERVICE,
    dra_v1_grpc,
    dra_v1_pb2,
    dra_v1beta1_grpc,
    dra_v1beta1_pb2,
    health_v1alpha1_grpc,
    health_v1alpha1_pb2,
    registration_grpc,
    registration_pb2,
)
from tests.unit.api.wire import embedded, map_entry, number, text

CALL_TIMEOUT_S = 5

V1 = "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/"
V1BETA1 = "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/"
METHODS = [
    (dra_v1_pb2, "DRAPlugin", "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources", False),
    (dra_v1_pb2, "DRAPlugin", "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources", False),
    (dra_v1beta1_pb2, "DRAPlugin", "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodePrepareResources",
     False),
    (dra_v1beta1_pb2, "DRAPlugin", "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources",
     False),
    (health_v1alpha1_pb2, "DRAResourceHealth", "/v1alpha1.DRAResourceHealth/NodeWatchResources", True),
    (registration_pb2, "Registration", "/pluginregistration.Registration/GetInfo", False),
    (registration_pb2, "Registration", "/pluginregistration.Registration/NotifyRegistrationStatus", False),
]


@pytest.mark.parametrize(("module", "service", "path", "server_streaming"), METHODS,
                         ids=[m[2] for m in METHODS])
def test_method_paths_come_from_the_service_descriptors(
    module: ModuleType, service: str, path: str, server_streaming: bool
) -> None:
    descriptor = module.DESCRIPTOR.services_by_name[service]
    method = descriptor.methods_by_name[path.rsplit("/", 1)[1]]
    assert f"/{descriptor.full_name}/{method.name}" == path
    assert (method.client_streaming, method.server_streaming) == (False, server_streaming)


def test_services_have_no_other_methods() -> None:
    for module in (dra_v1_pb2, dra_v1beta1_pb2, health_v1alpha1_pb2, registration_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            listed = {p.rsplit("/", 1)[1] for m, s, p, _ in METHODS if m is module and s == service.name}
            assert set(service.methods_by_name) == listed


def test_facade_service_names() -> None:
    assert (DRA_V1_SERVICE, DRA_V1BETA1_SERVICE, HEALTH_V1ALPHA1_SERVICE, REGISTRATION_SERVICE) == (
        "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin", "k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin",
        "v1alpha1.DRAResourceHealth", "pluginregistration.Registration")


class DraV1(dra_v1_grpc.DRAPluginServicer):
    def NodePrepareResources(self, request: Any, context: Any) -> Any:
        claim = request.claims[0]
        device = dra_v1_pb2.Device(request_names=["npu"], pool_name="node-a", device_name="npu-0",
                                   cdi_device_ids=[f"xpushare.io/claim={claim.uid}"], share_id="s1")
        response = dra_v1_pb2.NodePrepareResourcesResponse()
        response.claims[claim.uid].devices.append(device)
        return response

    def NodeUnprepareResources(self, request: Any, context: Any) -> Any:
        response = dra_v1_pb2.NodeUnprepareResourcesResponse()
        response.claims[request.claims[0].uid].error = "busy"
        return response


class DraV1beta1(dra_v1beta1_grpc.DRAPluginServicer):
    def NodePrepareResources(self, request: Any, context: Any) -> Any:
        response = dra_v1beta1_pb2.NodePrepareResourcesResponse()
        response.claims[request.claims[0].uid].error = f"no {request.claims[0].name}"
        return response


class Health(health_v1alpha1_grpc.DRAResourceHealthServicer):
    def NodeWatchResources(self, request: Any, context: Any) -> Iterator[Any]:
        for status in (health_v1alpha1_pb2.HEALTHY, health_v1alpha1_pb2.UNHEALTHY):
            device = health_v1alpha1_pb2.DeviceHealth(
                device=health_v1alpha1_pb2.DeviceIdentifier(pool_name="node-a", device_name="npu-0"),
                health=status)
            yield health_v1alpha1_pb2.NodeWatchResourcesResponse(devices=[device])


class Registration(registration_grpc.RegistrationServicer):
    def GetInfo(self, request: Any, context: Any) -> Any:
        return registration_pb2.PluginInfo(type="DRAPlugin", name="xpushare.io", endpoint="/p/dra.sock",
                                           supported_versions=["v1.DRAPlugin"])

    def NotifyRegistrationStatus(self, request: Any, context: Any) -> Any:
        if not request.plugin_registered:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, request.error)
        return registration_pb2.RegistrationStatusResponse()


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    """One real server on a unix socket serving every service, as the plugin does, and a raw channel."""
    with tempfile.TemporaryDirectory(prefix="xps-") as tmp:  # short: socket paths are limited to 107 bytes
        socket = Path(tmp, "dra.sock")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        dra_v1_grpc.add_DRAPluginServicer_to_server(DraV1(), server)
        # DraV1beta1 leaves NodeUnprepareResources out on purpose, to see the generated UNIMPLEMENTED.
        dra_v1beta1_grpc.add_DRAPluginServicer_to_server(DraV1beta1(), server)  # type: ignore[abstract]
        health_v1alpha1_grpc.add_DRAResourceHealthServicer_to_server(Health(), server)
        registration_grpc.add_RegistrationServicer_to_server(Registration(), server)
        server.add_insecure_port(f"unix:{socket}")
        server.start()
        try:
            with grpc.insecure_channel(f"unix:{socket}") as chan:
                yield chan
        finally:
            server.stop(grace=None).wait(CALL_TIMEOUT_S)


def call(channel: grpc.Channel, path: str, request: bytes) -> bytes:
    # No serializers: the request and the answer are raw bytes, as on the wire.
    result: bytes = channel.unary_unary(path, None, None)(request, timeout=CALL_TIMEOUT_S)
    return result


CLAIM = text(1, "team-a") + text(2, "uid-1") + text(3, "shared-npu")


def test_dra_v1_prepare_answers_on_the_kubelets_path(channel: grpc.Channel) -> None:
    answer = call(channel, V1 + "NodePrepareResources", embedded(1, CLAIM))
    device = (text(1, "npu") + text(2, "node-a") + text(3, "npu-0") + text(4, "xpushare.io/claim=uid-1")
              + text(5, "s1"))
    assert answer == map_entry(1, "uid-1", embedded(1, device))


def test_dra_v1_unprepare_answers_on_the_kubelets_path(channel: grpc.Channel) -> None:
    answer = call(channel, V1 + "NodeUnprepareResources", embedded(1, CLAIM))
    assert answer == map_entry(1, "uid-1", text(1, "busy"))


def test_dra_v1beta1_is_served_beside_v1(channel: grpc.Channel) -> None:
    assert call(channel, V1BETA1 + "NodePrepareResources", embedded(1, CLAIM)) == map_entry(
        1, "uid-1", text(2, "no shared-npu"))
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, V1BETA1 + "NodeUnprepareResources", b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED  # the generated base class says so


def test_health_stream_sends_every_update(channel: grpc.Channel) -> None:
    watch = channel.unary_stream("/v1alpha1.DRAResourceHealth/NodeWatchResources", None, None)
    stream = watch(b"", timeout=CALL_TIMEOUT_S)
    device = embedded(1, text(1, "node-a") + text(2, "npu-0"))
    assert list(stream) == [embedded(1, device + number(2, 1)), embedded(1, device + number(2, 2))]


def test_registration_get_info_and_status(channel: grpc.Channel) -> None:
    info = call(channel, "/pluginregistration.Registration/GetInfo", b"")
    assert info == (text(1, "DRAPlugin") + text(2, "xpushare.io") + text(3, "/p/dra.sock")
                    + text(4, "v1.DRAPlugin"))
    assert call(channel, "/pluginregistration.Registration/NotifyRegistrationStatus", number(1, 1)) == b""
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, "/pluginregistration.Registration/NotifyRegistrationStatus", text(2, "name taken"))
    error = caught.value
    assert (error.code(), error.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "name taken")


def test_unknown_path_is_unimplemented(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(channel, "/k8s.io.kubelet.pkg.apis.dra.v1.Node/NodePrepareResources", b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
