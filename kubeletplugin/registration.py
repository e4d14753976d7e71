"""The kubelet's plugin registration service: how the kubelet learns of the plugin and dials it.

The kubelet watches its ``plugins_registry`` directory, calls ``GetInfo`` on a new socket, dials the
``endpoint`` it names with the first of ``supported_versions`` that it speaks, and reports the result with
``NotifyRegistrationStatus``. So the DRA socket must already serve when this socket appears.
"""

from __future__ import annotations

import logging
import threading

import grpc

from api.kubelet import registration_grpc, registration_pb2

log = logging.getLogger(__name__)

PLUGIN_TYPE = "DRAPlugin"
SUPPORTED_VERSIONS = ("v1.DRAPlugin", "v1beta1.DRAPlugin", "v1alpha1.DRAResourceHealth")


class RegistrationServicer(registration_grpc.RegistrationServicer):
    """Answers ``GetInfo`` and records what the kubelet reported."""

    def __init__(self, driver_name: str, endpoint: str) -> None:
        self._info = registration_pb2.PluginInfo(
            type=PLUGIN_TYPE, name=driver_name, endpoint=endpoint, supported_versions=SUPPORTED_VERSIONS
        )
        self.registered = threading.Event()
        self.last_error = ""

    def GetInfo(  # noqa: N802 - the gRPC method name
        self, request: registration_pb2.InfoRequest, context: grpc.ServicerContext
    ) -> registration_pb2.PluginInfo:
        log.debug("kubelet asked for plugin info")
        return self._info

    def NotifyRegistrationStatus(  # noqa: N802
        self, request: registration_pb2.RegistrationStatus, context: grpc.ServicerContext
    ) -> registration_pb2.RegistrationStatusResponse:
        if request.plugin_registered:
            self.last_error = ""
            self.registered.set()
            log.info("registered with the kubelet", extra={"endpoint": self._info.endpoint})
        else:
            self.last_error = request.error
            self.registered.clear()
            log.error("kubelet refused the registration", extra={"error": request.error})
        return registration_pb2.RegistrationStatusResponse()


def add_registration_service(server: grpc.Server, servicer: RegistrationServicer) -> None:
    registration_grpc.add_RegistrationServicer_to_server(servicer, server)
