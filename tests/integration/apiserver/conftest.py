"""Fixtures of the API server tests: the shared ``apiserver`` and ``kube_client`` plus typed API helpers."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.support.apiserver import apiserver, kube_client

__all__ = ["apiserver", "coordination", "core", "kube_client", "resource"]


@pytest.fixture
def core(kube_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_client)


@pytest.fixture
def resource(kube_client: client.ApiClient) -> client.ResourceV1Api:
    return client.ResourceV1Api(kube_client)


@pytest.fixture
def coordination(kube_client: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(kube_client)
