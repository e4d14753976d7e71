"""Fixtures for controller tests against the embedded API server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from controller.publisher import KubeApi
from dra_driver.core.kube import NODES
from tests.support.apiserver import apiserver, kube_client  # noqa: F401 - fixtures

Obj = dict[str, Any]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed; it makes the webhook's test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=xpushare-webhook",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def api(kube_client: ApiClient) -> KubeApi:  # noqa: F811 - the fixture imported above
    return KubeApi(kube_client, timeout_seconds=10)


@pytest.fixture
def make_node(api: KubeApi) -> Callable[[str], Obj]:
    """Create a Node by name and return it (with the uid the server gave it)."""

    def make(name: str) -> Obj:
        return api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})

    return make
