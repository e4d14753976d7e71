"""Whether the kubelet can reach this node's plugin, checked from the node (``xpushare diagnose``).

The kubelet finds the plugin by its registration socket in ``plugins_registry``, asks it ``GetInfo``
and dials the DRA endpoint that the answer names. So: the registration socket is a socket that answers
``GetInfo`` (as the kubelet asks it, with a timeout) for our driver and for the DRA socket diagnose
expects, and that DRA socket accepts connections. A socket file that nothing answers on is what a
plugin that died leaves; the kubelet then has no plugin for the driver and pods wait for their claims.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import grpc

from api.kubelet import registration_grpc, registration_pb2
from kubeletplugin.findings import Finding, Severity
from kubeletplugin.registration import PLUGIN_TYPE
from kubeletplugin.settings import PluginSettings

_RUNNING = (
    "is the plugin running on this node (kubectl get pods -A -o wide -l "
    "app.kubernetes.io/component=kubelet-plugin)? --registry-dir and --plugin-dir must be the plugin's"
)


def _socket_problem(path: Path) -> str:
    """Why ``path`` is not a socket ("" when it is one)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return "is missing"
    except OSError as err:
        return f"cannot be looked at: {err.strerror}"
    return "" if stat.S_ISSOCK(mode) else "is not a socket"


def _accepts(path: Path, timeout_s: float) -> str:
    """Why nothing accepts a connection on the socket at ``path`` ("" when something does)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout_s)
        try:
            probe.connect(str(path))
        except OSError as err:
            return err.strerror or str(err)
    return ""


def _get_info(path: Path, timeout_s: float) -> registration_pb2.PluginInfo | str:
    """The plugin's ``GetInfo`` answer, or why there is none."""
    with grpc.insecure_channel(f"unix://{path}") as channel:
        try:
            info: registration_pb2.PluginInfo = registration_grpc.RegistrationStub(channel).GetInfo(
                registration_pb2.InfoRequest(), timeout=timeout_s
            )
        except grpc.RpcError as err:
            code = err.code() if isinstance(err, grpc.Call) else None
            return f"GetInfo failed ({code.name if code is not None else err})"
    return info


def check_registration(settings: PluginSettings, timeout_s: float = 2.0) -> list[Finding]:
    """Findings about the registration socket and the DRA socket of ``settings`` (the plugin's paths)."""
    registration, dra = settings.registration_socket, settings.dra_socket
    found: list[Finding] = []
    problem = _socket_problem(registration)
    if problem:
        found.append(
            Finding(
                Severity.ERROR,
                f"registration socket {registration}",
                f"{problem}: the kubelet does not know a plugin for {settings.driver_name} here",
                _RUNNING,
            )
        )
    else:
        info = _get_info(registration, timeout_s)
        if isinstance(info, str):
            found.append(
                Finding(
                    Severity.ERROR,
                    f"registration socket {registration}",
                    f"nothing answers on it ({info}): left by a plugin that stopped",
                    "restart the plugin's pod; it replaces the socket",
                )
            )
        elif (info.type, info.name, info.endpoint) != (PLUGIN_TYPE, settings.driver_name, str(dra)):
            found.append(
                Finding(
                    Severity.ERROR,
                    f"registration socket {registration}",
                    f"answers for {info.type} {info.name!r} at {info.endpoint}, not for "
                    f"{settings.driver_name!r} at {dra}",
                    "another plugin registers under this name, or the plugin runs with other "
                    "--driver-name/--plugin-dir than diagnose was given",
                )
            )
        else:
            found.append(
                Finding(
                    Severity.INFO,
                    "registration",
                    f"{registration} answers GetInfo: {info.name} at {info.endpoint} "
                    f"({', '.join(info.supported_versions)})",
                    "-",
                )
            )
    problem = _socket_problem(dra) or _accepts(dra, timeout_s)
    if problem:
        found.append(
            Finding(
                Severity.ERROR,
                f"DRA socket {dra}",
                f"{problem}: the kubelet cannot call the plugin to prepare claims",
                _RUNNING,
            )
        )
    return found
