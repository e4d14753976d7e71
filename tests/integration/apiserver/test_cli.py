"""``xpushare sim apiserver`` as a real process: its kubeconfig works for the client and for kubectl."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.integration.apiserver import objects

KUBECTL = shutil.which("kubectl")
_SCRIPT = Path(sys.executable).parent / "xpushare"
XPUSHARE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "dra_driver"]
"""The installed ``xpushare`` entry point beside the interpreter, or the package run as a module."""


@contextlib.contextmanager
def running_cli(kubeconfig: Path, *extra: str) -> Iterator[Path]:
    """Run the CLI with --kubeconfig; yield the kubeconfig path once the server is up."""
    command = [*XPUSHARE, "sim", "apiserver", "--kubeconfig", str(kubeconfig), *extra]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert first.startswith(("http://127.0.0.1:", "https://127.0.0.1:")), first
            assert "kubeconfig written" in process.stdout.readline()
            yield kubeconfig
        finally:
            process.send_signal(signal.SIGTERM)
            _, errors = process.communicate(timeout=10)
        assert process.returncode == 0, errors


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    with running_cli(tmp_path / "kube" / "config", "--disable-gate", "DRADeviceTaints") as kubeconfig:
        yield kubeconfig


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_cli_serves_https_with_tls(tmp_path: Path) -> None:
    with running_cli(tmp_path / "config", "--tls") as kubeconfig:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            assert api.configuration.host.startswith("https://")
            assert client.CoreV1Api(api).read_namespace("kube-system").metadata.name == "kube-system"
        finally:
            api.close()


def test_cli_kubeconfig_loads_and_lists_namespaces(served: Path) -> None:
    assert oct(served.stat().st_mode & 0o777) == "0o600"
    api = config.new_client_from_config(config_file=str(served))
    try:
        names = {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items}
    finally:
        api.close()
    assert {"default", "kube-system"} <= names


def test_cli_load_kube_config_sets_the_default_client(served: Path) -> None:
    previous = client.Configuration.get_default_copy()
    try:
        config.load_kube_config(config_file=str(served))
        with client.ApiClient() as api:
            assert client.CoreV1Api(api).read_namespace("default").status.phase == "Active"
    finally:
        client.Configuration.set_default(previous)


def test_cli_applies_disabled_gates(served: Path) -> None:
    api = config.new_client_from_config(config_file=str(served))
    try:
        body = objects.resource_slice("s1", "n1")
        body["spec"]["devices"][0]["taints"] = [{"key": "xpushare.io/unhealthy", "effect": "NoSchedule"}]
        created = client.ResourceV1Api(api).create_resource_slice(body)
    finally:
        api.close()
    assert created.spec.devices[0].taints is None


def _kubectl(kubeconfig: Path, cache: Path, *args: str, stdin: str | None = None) -> str:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(cache)}
    done = subprocess.run([KUBECTL, "--cache-dir", str(cache / "cache"), *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


MANIFEST = """
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: npu.xpushare.io
spec:
  selectors:
  - cel:
      expression: device.driver == 'xpushare.io'
---
apiVersion: v1
kind: Pod
metadata:
  name: demo
  labels: {app: demo}
spec:
  containers:
  - name: main
    image: busybox
"""


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_get_apply_watch_and_delete(served: Path, tmp_path: Path) -> None:
    assert "default" in _kubectl(served, tmp_path, "get", "namespaces")
    assert "resourceslices" in _kubectl(served, tmp_path, "api-resources")
    assert "created" in _kubectl(served, tmp_path, "apply", "-f", "-", stdin=MANIFEST)
    changed = MANIFEST.replace("app: demo", "app: changed")
    assert "pod/demo configured" in _kubectl(served, tmp_path, "apply", "-f", "-", stdin=changed)
    labels = _kubectl(served, tmp_path, "get", "pod", "demo", "-o", "jsonpath={.metadata.labels.app}")
    assert labels == "changed"
    applied = _kubectl(served, tmp_path, "apply", "--server-side", "-f", "-", stdin=changed)
    assert "serverside-applied" in applied
    watched = _kubectl(served, tmp_path, "get", "deviceclasses", "--watch", "--request-timeout=2s")
    assert "npu.xpushare.io" in watched
    assert "deleted" in _kubectl(served, tmp_path, "delete", "-f", "-", stdin=MANIFEST)
    assert _kubectl(served, tmp_path, "get", "deviceclasses", "-o", "name").strip() == ""


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_create_namespace_sends_protobuf_and_works(served: Path, tmp_path: Path) -> None:
    assert "namespace/team-a created" in _kubectl(served, tmp_path, "create", "namespace", "team-a")
    shown = _kubectl(served, tmp_path, "get", "namespace", "team-a", "-o", "jsonpath={.metadata.labels}")
    assert "kubernetes.io/metadata.name" in shown
