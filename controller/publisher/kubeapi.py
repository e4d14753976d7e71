"""The controller's one seam to the API server: JSON in, JSON out, through the official client.

The official client's typed models cost milliseconds per ResourceSlice to build and to parse; the
publisher's targets (128 devices in < 300 ms, 1,000 unchanged pools in < 2 s) leave no room for that.
So requests go through the client's own ``ApiClient`` (same kubeconfig, auth, TLS and connection
pool) with plain dicts: ``param_serialize`` builds the URL and headers, ``call_api`` sends, and the body
is parsed once with ``json``. Errors become ``ApiError`` with the HTTP status and the server's message.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import urllib3
from kubernetes.client import ApiClient

from controller.settings import RetrySettings
from dra_driver.errors import XPUShareError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
T = TypeVar("T")

RESOURCE_SLICES = "/apis/resource.k8s.io/v1/resourceslices"
DEVICE_CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"
NODES = "/api/v1/nodes"
MERGE_PATCH = "application/merge-patch+json"


class ApiError(XPUShareError):
    """An API request failed; ``status`` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def retryable(self) -> bool:
        """Conflicts, throttling, server errors and unreachable servers are worth another try."""
        return self.status in (0, 409, 429) or self.status >= 500


class KubeApi:
    """Plain-JSON REST calls over an official ``ApiClient``."""

    def __init__(self, api_client: ApiClient, timeout_seconds: float = 30.0) -> None:
        self.api_client = api_client
        self.timeout_seconds = timeout_seconds

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        """Send one request and return the decoded JSON answer; raise ``ApiError`` on any failure."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, _, _ = self.api_client.param_serialize(
            method, path, query_params=list(query), header_params=headers, auth_settings=["BearerToken"]
        )
        try:
            response = self.api_client.call_api(
                method, url, headers, body, _request_timeout=self.timeout_seconds
            )
            data = response.read()  # type: ignore[no-untyped-call]
        except urllib3.exceptions.HTTPError as err:
            raise ApiError(f"{method} {path}: server not reachable: {err}") from err
        if not 200 <= response.status <= 299:
            raise _error(method, path, response.status, data)
        decoded: Obj = json.loads(data) if data else {}
        return decoded

    def list(self, path: str, **selectors: str) -> list[Obj]:
        """All items of a collection; ``selectors`` are query parameters like ``fieldSelector``."""
        query = [(name, value) for name, value in selectors.items() if value]
        items: list[Obj] = []
        while True:
            page = self.request("GET", path, query=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query = [*[(n, v) for n, v in query if n != "continue"], ("continue", token)]

    def get(self, path: str) -> Obj:
        return self.request("GET", path)

    def create(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body=body)

    def replace(self, path: str, body: Obj) -> Obj:
        return self.request("PUT", path, body=body)

    def merge_patch(self, path: str, patch: Obj) -> Obj:
        return self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    def delete(self, path: str, missing_ok: bool = True) -> None:
        try:
            self.request("DELETE", path)
        except ApiError as err:
            if not (missing_ok and err.status == 404):
                raise


def _error(method: str, path: str, status: int, data: bytes | None) -> ApiError:
    message, reason = "", ""
    try:
        body = json.loads(data or b"{}")
        if isinstance(body, Mapping):
            message, reason = str(body.get("message", "")), str(body.get("reason", ""))
    except ValueError:
        message = (data or b"")[:200].decode("utf-8", "replace")
    return ApiError(f"{method} {path}: HTTP {status} {reason}: {message}".rstrip(": "), status, reason)


def with_retries(
    action: Callable[[], T],
    what: str,
    settings: RetrySettings,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``, retrying retryable ``ApiError``s with capped, jittered exponential backoff."""
    for attempt in range(settings.attempts):
        try:
            return action()
        except ApiError as err:
            if not err.retryable or attempt + 1 >= settings.attempts:
                raise
            delay = min(settings.cap_seconds, settings.base_seconds * 2**attempt)
            delay *= 0.5 + random.random() / 2  # noqa: S311 - jitter, not security
            log.info(
                "%s failed, retrying",
                what,
                extra={"status": err.status, "attempt": attempt + 1, "delay": delay},
            )
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def load_api_client(kubeconfig: str | None = None) -> ApiClient:
    """An official client from ``kubeconfig``, else the in-cluster service account, else ~/.kube/config."""
    import os

    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as err:
        raise ApiError(f"load Kubernetes client configuration ({kubeconfig or 'default'}): {err}") from err
    return client.ApiClient(configuration)
