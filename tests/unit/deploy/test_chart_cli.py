"""The chart's container commands parse with the real ``xpushare`` parser, so the chart cannot drift
from the CLI: a renamed or removed flag fails here, not in a crash-looping pod.

Kubernetes expands ``$(VAR)`` in args from the container's own env; every variable an arg names must be
defined there (an undefined one would reach the program literally).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
from pathlib import Path
from typing import Any

import helm_python
import pytest

from api.errors import ConfigError
from dra_driver import cli
from dra_driver.core.discovery.base import BACKEND_KINDS
from tests.unit.deploy.chart import CHART_DIR, NAMESPACE, VARIANTS, Obj, container, one, one_mount, render

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
SAMPLE_ENV = {"NODE_NAME": "node-a", "POD_NAME": "xpushare-controller-0", "POD_NAMESPACE": NAMESPACE}


def _parser() -> argparse.ArgumentParser:
    # The component modules register themselves in COMMAND_MODULES; make sure both are present even
    # while a module is not yet listed there.
    modules = tuple(cli.COMMAND_MODULES)
    for name in ("dra_driver.cli.kubelet_plugin", "dra_driver.cli.controller"):
        importlib.import_module(name)
        if name not in modules:
            modules += (name,)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "COMMAND_MODULES", modules)
        return cli.build_parser()


def _expanded(item: Obj) -> list[str]:
    defined = {env["name"] for env in item.get("env", [])}
    argv = [*item["command"][1:], *item.get("args", [])]
    for arg in argv:
        for name in _VAR.findall(arg):
            assert name in defined, f"{item['name']}: $({name}) is not in the container's env"
    return [_VAR.sub(lambda m: SAMPLE_ENV[m.group(1)], arg) for arg in argv]


def parse(item: Obj) -> argparse.Namespace:
    """Parse a container's command line; a parser error fails the test with argparse's message."""
    assert item["command"][0] == "xpushare"
    argv = _expanded(item)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{item['name']}: xpushare {' '.join(argv)}\n{stderr.getvalue()}")


def _plugin(values: dict[str, Any]) -> tuple[Obj, argparse.Namespace]:
    daemonset = one(render(values), "DaemonSet")
    return daemonset, parse(container(daemonset, "plugin"))


def _controller(values: dict[str, Any]) -> tuple[Obj, argparse.Namespace]:
    deployment = one(render(values), "Deployment")
    return deployment, parse(container(deployment, "controller"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_parses_with_the_real_cli(variant: str) -> None:
    _, plugin = _plugin(VARIANTS[variant])
    _, controller = _controller(VARIANTS[variant])
    assert plugin.command == "kubelet-plugin"
    assert controller.command == "controller"
    assert plugin.handler is not controller.handler


def test_plugin_flags_carry_the_values() -> None:
    values = {
        "driverName": "share.example.com",
        "sliceMode": "partitioned",
        "partitionLayout": "menu",
        "partitions": "gpu=1/4,1/2,1;ascend310p=1/7",
        "discovery": {"backend": "ascend"},
        "paths": {"kubeletDir": "/data/kubelet", "cdiDir": "/etc/cdi", "runDir": "/run/xps"},
        "kubeletPlugin": {"healthInterval": 2.5, "maxParallelClaims": 16},
        "logging": {"level": "DEBUG", "json": False},
    }
    _, args = _plugin(values)
    assert args.node_name == "node-a"
    assert args.driver_name == "share.example.com"
    assert args.slice_mode == "partitioned"
    assert (args.partition_layout, args.partitions) == ("menu", "gpu=1/4,1/2,1;ascend310p=1/7")
    assert args.discovery_backend == "ascend"
    assert args.registry_dir == Path("/data/kubelet/plugins_registry")
    assert args.plugin_dir == Path("/data/kubelet/plugins/share.example.com")
    assert args.cdi_dir == Path("/etc/cdi")
    assert args.run_dir == Path("/run/xps")
    assert args.state_dir == Path("/var/lib/xpushare")
    assert args.shim_path == Path("/var/lib/xpushare/shim/libxpushare.so")
    assert (args.health_interval, args.max_parallel_claims) == (2.5, 16)
    assert (args.log_level, args.log_json, args.no_publish) == ("DEBUG", False, False)


def test_plugin_flags_of_optional_features() -> None:
    _, nvidia = _plugin(VARIANTS["nvidia"])
    assert nvidia.nvidia_cdi_kind == "nvidia.com/gpu"
    _, mock = _plugin(VARIANTS["mock"])
    assert mock.inventory == "/etc/xpushare/inventory/inventory.yaml"
    assert mock.no_publish is True
    assert mock.shim_path is None
    _, default = _plugin({})
    assert (default.inventory, default.nvidia_cdi_kind, default.log_json) == (None, "auto", True)
    assert default.driver_lookup_root == Path("/host")  # the host's root, read-only


def test_plugin_paths_are_mounted_at_the_same_path() -> None:
    """What the plugin writes into CDI specs is resolved on the host: each path it is given must be a
    host path mounted at that very path."""
    daemonset, args = _plugin({})
    plugin = container(daemonset, "plugin")
    mounts = {m["mountPath"]: m["name"] for m in plugin["volumeMounts"]}
    host = {v["name"]: v["hostPath"]["path"] for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    for path in (args.registry_dir, args.plugin_dir, args.cdi_dir, args.state_dir, args.run_dir):
        assert host[mounts[str(path)]] == str(path)
    assert host[mounts[str(args.shim_path.parent)]] == str(args.shim_path.parent)


def test_controller_flags_carry_the_values() -> None:
    values = {
        "driverName": "share.example.com",
        "controller": {"leaderElection": {"leaseName": "xps", "leaseDuration": 30}, "resync": 60},
        "webhook": {"port": 9443},
    }
    deployment, args = _controller(values)
    assert args.driver_name == "share.example.com"
    assert (args.namespace, args.identity) == (NAMESPACE, "xpushare-controller-0")
    assert (args.lease_name, args.lease_duration, args.resync) == ("xps", 30.0, 60.0)
    assert (args.renew_deadline, args.retry_period) == (10.0, 2.0)
    assert args.webhook_port == 9443
    controller = container(deployment, "controller")
    assert controller["ports"][0]["containerPort"] == 9443
    tls_mount = one_mount(controller, "webhook-tls")
    assert args.tls_cert_file == Path(tls_mount, "tls.crt")
    assert args.tls_key_file == Path(tls_mount, "tls.key")


def test_controller_without_webhook_gets_no_certificate() -> None:
    deployment, args = _controller({"webhook": {"enabled": False}})
    assert (args.tls_cert_file, args.tls_key_file) == (None, None)
    assert "volumes" not in deployment["spec"]["template"]["spec"]


def test_extra_args_reach_the_parser() -> None:
    with pytest.raises(pytest.fail.Exception, match="--no-such-flag"):
        _plugin({"kubeletPlugin": {"extraArgs": ["--no-such-flag"]}})


class _BuiltError(Exception):
    """Raised by the stand-ins below once the handler has turned its flags into settings."""


class _NoServer:
    """Stands in for the metrics endpoint: records its address, binds nothing."""

    def __init__(self, captured: dict[str, Any], registry: Any, address: Any, **_: Any) -> None:
        captured["metrics_address"] = address

    @classmethod
    def record(cls, captured: dict[str, Any]) -> Any:
        return lambda *args, **kwargs: cls(captured, *args, **kwargs)

    def start(self) -> _NoServer:
        return self

    def stop(self) -> None:
        return None


def _run_until_built(args: argparse.Namespace, target: str, patch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run the subcommand's real handler with ``target`` replaced by a stand-in that records how it
    was called and stops the handler there (before any socket, signal handler or API call)."""
    captured: dict[str, Any] = {}

    def stand_in(*positional: Any, **keywords: Any) -> None:
        captured.update(args=positional, kwargs=keywords)
        raise _BuiltError

    patch.setattr(target, stand_in)
    patch.setattr("dra_driver.core.metrics_server.MetricsServer", _NoServer.record(captured))
    patch.setattr("dra_driver.core.telemetry.setup_tracing", lambda *a, **k: None)
    patch.setattr("signal.signal", lambda *a, **k: None)
    with pytest.raises(_BuiltError):
        args.handler(args)
    return captured


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_plugin_flags_make_valid_settings(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's own validation (PluginSettings) accepts what the chart passes."""
    _, args = _plugin(VARIANTS[variant])
    settings = _run_until_built(args, "kubeletplugin.plugin.Plugin", monkeypatch)["args"][0]
    assert settings.node_name == "node-a"
    assert settings.dra_socket == Path("/var/lib/kubelet/plugins/xpushare.io/dra.sock")
    assert settings.registration_socket == Path("/var/lib/kubelet/plugins_registry/xpushare.io-reg.sock")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_controller_flags_make_valid_settings(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leader-election timing and the webhook reach the controller's own validation and server."""
    _, args = _controller(VARIANTS[variant])
    webhook = VARIANTS[variant].get("webhook", {}).get("enabled", True)
    target = (
        "controller.admission.WebhookServer" if webhook else "dra_driver.core.kube.load_api_client"
    )
    called = _run_until_built(args, target, monkeypatch)
    if webhook:
        assert called["args"][:2] == (Path("/etc/xpushare/tls/tls.crt"), Path("/etc/xpushare/tls/tls.key"))


def test_leader_election_timing_is_checked_by_the_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    _, args = _controller({"controller": {"leaderElection": {"renewDeadline": 20}}})
    with pytest.raises(ConfigError, match="renewDeadline < leaseDuration"):
        _run_until_built(args, "controller.admission.WebhookServer", monkeypatch)


def test_webhook_port_reaches_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    _, args = _controller({"webhook": {"port": 9443}})
    called = _run_until_built(args, "controller.admission.WebhookServer", monkeypatch)
    assert called["kwargs"].get("port", 8443) == 9443


def _choices(subcommand: str, flag: str) -> list[str]:
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in subparsers.choices[subcommand]._actions if flag in a.option_strings)
    return list(action.choices or [])


def test_values_schema_allows_exactly_what_the_components_accept() -> None:
    with helm_python.Chart.load(CHART_DIR) as chart:
        schema = chart.schema
    assert schema is not None
    properties = schema["properties"]
    assert properties["sliceMode"]["enum"] == _choices("kubelet-plugin", "--slice-mode")
    assert sorted(properties["discovery"]["properties"]["backend"]["enum"]) == sorted(BACKEND_KINDS)
    assert properties["logging"]["properties"]["level"]["enum"] == ["DEBUG", "INFO", "WARNING", "ERROR"]


@pytest.mark.parametrize(
    ("values", "plugin_address", "controller_address"),
    [
        ({}, ("0.0.0.0", 9464), ("0.0.0.0", 9465)),
        (
            {"kubeletPlugin": {"metricsPort": 19464}, "controller": {"metricsPort": 19465}},
            ("0.0.0.0", 19464),
            ("0.0.0.0", 19465),
        ),
        ({"metrics": {"enabled": False}}, None, None),
    ],
    ids=["defaults", "ports", "off"],
)
def test_metrics_address_reaches_both_servers_on_the_container_port(
    values: dict[str, Any],
    plugin_address: tuple[str, int] | None,
    controller_address: tuple[str, int] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemonset, plugin_args = _plugin(values)
    settings = _run_until_built(plugin_args, "kubeletplugin.plugin.Plugin", monkeypatch)["args"][0]
    assert settings.metrics_listen == plugin_address
    deployment, controller_args = _controller(values)
    called = _run_until_built(controller_args, "controller.admission.WebhookServer", monkeypatch)
    assert called.get("metrics_address") == controller_address
    for workload, address in ((daemonset, plugin_address), (deployment, controller_address)):
        item = container(workload, workload["spec"]["template"]["spec"]["containers"][0]["name"])
        ports = {p["name"]: p["containerPort"] for p in item.get("ports", [])}
        assert ports.get("metrics") == (address[1] if address else None)


def test_the_plugin_sees_the_host_s_root_read_only_and_the_toolkit_s_cdi_directory() -> None:
    """Containers get the driver files, tools and configuration each node has without per-node lists:
    the plugin looks through a read-only view of the host's root (and /etc/cdi for NVIDIA's spec)."""
    daemonset, args = _plugin({})
    plugin = container(daemonset, "plugin")
    mounts = {m["mountPath"]: m for m in plugin["volumeMounts"]}
    volumes = {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    root = mounts["/host"]
    assert (root["readOnly"], root["mountPropagation"]) == (True, "HostToContainer")
    assert volumes[root["name"]]["hostPath"] == {"path": "/", "type": "Directory"}
    assert mounts["/etc/cdi"]["readOnly"] is True
    assert volumes[mounts["/etc/cdi"]["name"]]["hostPath"]["path"] == "/etc/cdi"
    assert args.driver_lookup_root == Path("/host")
    _, without = _plugin({"hostRoot": {"enabled": False}})
    assert without.driver_lookup_root is None
