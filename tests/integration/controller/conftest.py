"""Fixtures for controller tests against the embedded API server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from controller.publisher import KubeApi
from dra_driver.core.kube import NODES
from tests.support.apiserver import apiserver, kube_client  # noqa: F401 - fixtures
from tests.support.certs import NO_OPENSSL, have_openssl, self_signed

Obj = dict[str, Any]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI."""
    if not have_openssl():
        pytest.skip(NO_OPENSSL)
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def api(kube_client: ApiClient) -> KubeApi:  # noqa: F811 - the fixture imported above
    return KubeApi(kube_client, timeout_seconds=10)


@pytest.fixture
def make_node(api: KubeApi) -> Callable[[str], Obj]:
    """Create a Node by name and return it (with the uid the server gave it)."""

    def make(name: str) -> Obj:
        return api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})

    return make
