"""Fixtures of the scheduler stand-in tests: the shared embedded API server and an official client."""

from __future__ import annotations

from tests.support.apiserver import apiserver, kube_client

__all__ = ["apiserver", "kube_client"]
