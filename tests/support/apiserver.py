"""Shared fixtures for tests that need a Kubernetes API server: the embedded one, fresh per test.

Use it from any test module or conftest::

    from tests.support.apiserver import api_client, apiserver, kube_client  # noqa: F401 (fixtures)

    def test_something(apiserver: ApiServer) -> None:
        with api_client(apiserver) as client:
            ResourceV1Api(client).list_resource_slice()

``apiserver`` yields a running ``dra_driver.simulation.apiserver.ApiServer`` on a free loopback port
(namespaces ``default`` and ``kube-system`` exist); ``kube_client`` yields an official
``kubernetes.client.ApiClient`` configured for it and closes it afterwards. ``api_client(server)``
builds such a client by hand.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from dra_driver.simulation.apiserver import ApiServer


def api_client(server: ApiServer) -> client.ApiClient:
    """An official client talking to ``server``, configured from the server's own kubeconfig."""
    return server.client()


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    """A running embedded API server, stopped (and its watches ended) after the test."""
    with ApiServer() as server:
        yield server


@pytest.fixture
def kube_client(apiserver: ApiServer) -> Iterator[client.ApiClient]:
    """An official ApiClient for the ``apiserver`` fixture."""
    with api_client(apiserver) as api:
        yield api
