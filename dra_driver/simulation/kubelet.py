"""A kubelet stand-in: registers a DRA plugin through its registration socket and calls it over gRPC.

The demo and the tests drive the node plugin through it exactly as a kubelet would. It does what the
kubelet's plugin manager and DRA manager do, in the same order: wait for the
registration socket, ``GetInfo``, check the plugin type, name and versions, ``NotifyRegistrationStatus``,
then dial the endpoint the plugin named and call ``NodePrepareResources``/``NodeUnprepareResources`` in
the first version both sides speak (or one the test asks for), with the kubelet's 45 s timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from api.errors import XPUShareError
from api.kubelet import (
    dra_v1_grpc,
    dra_v1_pb2,
    dra_v1beta1_grpc,
    dra_v1beta1_pb2,
    health_v1alpha1_grpc,
    health_v1alpha1_pb2,
    registration_grpc,
    registration_pb2,
)

KUBELET_VERSIONS = ("v1.DRAPlugin", "v1beta1.DRAPlugin")
CALL_TIMEOUT_S = 45.0


class RegistrationRefused(XPUShareError):  # noqa: N818 - reads as the kubelet's verdict
    """The plugin's GetInfo answer is not one the kubelet would accept."""


@dataclass(frozen=True)
class ClaimRef:
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ClaimRef:
        meta = obj["metadata"]
        return cls(meta["namespace"], meta["name"], meta["uid"])


def wait_for_socket(path: Path, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"socket {path} did not appear within {timeout_s}s")
        time.sleep(0.02)


def _unix(path: Path | str) -> str:
    return f"unix://{path}"


class KubeletClient:
    """Registers one plugin and keeps a channel to its DRA endpoint."""

    def __init__(self, registration_socket: Path, driver_name: str = "xpushare.io") -> None:
        self.registration_socket = registration_socket
        self.driver_name = driver_name
        self.info: registration_pb2.PluginInfo | None = None
        self.version = ""
        self._channel: grpc.Channel | None = None

    def register(self, timeout_s: float = 20.0) -> registration_pb2.PluginInfo:
        deadline = time.monotonic() + timeout_s
        wait_for_socket(self.registration_socket, timeout_s)
        info = self._get_info(deadline)
        error = self._check(info)
        with grpc.insecure_channel(_unix(self.registration_socket)) as channel:
            registration_grpc.RegistrationStub(channel).NotifyRegistrationStatus(
                registration_pb2.RegistrationStatus(plugin_registered=not error, error=error), timeout=10
            )
        if error:
            raise RegistrationRefused(error)
        self.info = info
        self.version = next(v for v in info.supported_versions if v in KUBELET_VERSIONS)
        self._channel = grpc.insecure_channel(_unix(info.endpoint))
        return info

    def _get_info(self, deadline: float) -> registration_pb2.PluginInfo:
        """GetInfo, retried while the socket is a stale one left by a killed plugin (connection refused).

        A fresh channel per attempt: a channel that failed once waits out gRPC's reconnect backoff.
        """
        while True:
            with grpc.insecure_channel(_unix(self.registration_socket)) as channel:
                try:
                    info: registration_pb2.PluginInfo = registration_grpc.RegistrationStub(channel).GetInfo(
                        registration_pb2.InfoRequest(), timeout=5
                    )
                    return info
                except grpc.RpcError as err:
                    code = err.code()
                    if code != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise
            time.sleep(0.05)

    def _check(self, info: registration_pb2.PluginInfo) -> str:
        if info.type != "DRAPlugin":
            return f"plugin type {info.type!r} is not DRAPlugin"
        if info.name != self.driver_name:
            return f"plugin name {info.name!r} is not {self.driver_name!r}"
        if not any(v in KUBELET_VERSIONS for v in info.supported_versions):
            return f"no supported version in {list(info.supported_versions)}"
        if not Path(info.endpoint).is_socket():
            return f"endpoint {info.endpoint} is not a socket"
        return ""

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            raise XPUShareError("kubelet stand-in: register() the plugin before calling it")
        return self._channel

    def prepare(
        self, claims: Iterable[ClaimRef], version: str | None = None, metadata: Sequence[tuple[str, str]] = ()
    ) -> Any:
        """``NodePrepareResources``; returns the response message of the version used."""
        pb2, grpc_mod = self._modules(version)
        request = pb2.NodePrepareResourcesRequest(
            claims=[pb2.Claim(namespace=c.namespace, name=c.name, uid=c.uid) for c in claims]
        )
        stub = grpc_mod.DRAPluginStub(self.channel)
        return stub.NodePrepareResources(request, timeout=CALL_TIMEOUT_S, metadata=tuple(metadata))

    def unprepare(self, claims: Iterable[ClaimRef], version: str | None = None) -> Any:
        pb2, grpc_mod = self._modules(version)
        request = pb2.NodeUnprepareResourcesRequest(
            claims=[pb2.Claim(namespace=c.namespace, name=c.name, uid=c.uid) for c in claims]
        )
        return grpc_mod.DRAPluginStub(self.channel).NodeUnprepareResources(request, timeout=CALL_TIMEOUT_S)

    def watch_health(
        self, timeout_s: float = 10.0
    ) -> Iterator[health_v1alpha1_pb2.NodeWatchResourcesResponse]:
        stub = health_v1alpha1_grpc.DRAResourceHealthStub(self.channel)
        stream = stub.NodeWatchResources(health_v1alpha1_pb2.NodeWatchResourcesRequest(), timeout=timeout_s)
        return iter(stream)

    def _modules(self, version: str | None) -> tuple[Any, Any]:
        chosen = version or self.version
        if chosen.startswith("v1beta1"):
            return dra_v1beta1_pb2, dra_v1beta1_grpc
        return dra_v1_pb2, dra_v1_grpc

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> KubeletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
