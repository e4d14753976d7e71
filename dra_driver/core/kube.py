"""Every component's one seam to the API server: errors, retries and JSON requests over the official client.

    XPUShareError
    └── ApiError          a request failed: ``status`` (0 when the server was not reached) and ``reason``
        └── ConflictError 409, the object changed under us; re-read and try again

``KubeApi`` sends raw JSON through the official client's own ``ApiClient`` (same kubeconfig, auth, TLS
and connection pool): the client's typed models cost milliseconds per ResourceSlice to build and to
parse, and the publisher's targets (128 devices in < 300 ms, 1,000 unchanged pools in < 2 s) leave no
room for that. ``param_serialize`` builds the URL and headers, ``call_api`` sends, and the body is parsed
once with ``json``. Callers that use the typed APIs instead wrap each call in ``typed_call`` so that
their failures are the same ``ApiError``. ``with_retries`` is the one backoff loop: transient failures
(unreachable server, conflicts, throttling, server errors) for most callers, conflicts alone for
read-modify-write loops whose other failures are answers.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from api.errors import XPUShareError
from dra_driver.core.kubetypes import Obj

log = logging.getLogger(__name__)

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


class ConflictError(ApiError):
    """The object changed under us (409): re-read it and try again."""


def api_error(what: str, status: int, reason: str = "", message: str = "") -> ApiError:
    """The error for an HTTP failure, a ``ConflictError`` for 409; the text names the verb and object."""
    kind = ConflictError if status == 409 else ApiError
    return kind(f"{what}: HTTP {status} {reason}: {message}".rstrip(": "), status, reason)


@dataclass(frozen=True, slots=True)
class Backoff:
    """``base * 2**attempt`` seconds capped at ``cap``; give up after ``attempts`` tries or ``deadline``.

    ``attempts=None`` leaves the deadline alone to end the loop. Jitter (a random 50-100% of each delay)
    keeps many controllers from retrying in step.
    """

    attempts: int | None = 6
    base_seconds: float = 0.05
    cap_seconds: float = 2.0
    deadline_seconds: float | None = None
    jitter: bool = True

    def delay(self, attempt: int) -> float:
        delay = min(self.cap_seconds, self.base_seconds * 2.0**attempt)
        return delay * (0.5 + random.random() / 2) if self.jitter else delay  # noqa: S311 - not security


def transient(err: ApiError) -> bool:
    return err.retryable


def conflicts_only(err: ApiError) -> bool:
    return isinstance(err, ConflictError)


def with_retries(
    action: Callable[[], T],
    what: str,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    *,
    retry_on: Callable[[ApiError], bool] = transient,
) -> T:
    """Run ``action``, retrying the ``ApiError``s that ``retry_on`` accepts with ``backoff``."""
    end = None if backoff.deadline_seconds is None else time.monotonic() + backoff.deadline_seconds
    attempt = 0
    while True:
        try:
            return action()
        except ApiError as err:
            delay = backoff.delay(attempt)
            attempt += 1
            if (
                not retry_on(err)
                or (backoff.attempts is not None and attempt >= backoff.attempts)
                or (end is not None and time.monotonic() + delay > end)
            ):
                raise
            log.info(
                "%s failed, retrying", what, extra={"status": err.status, "attempt": attempt, "delay": delay}
            )
            sleep(delay)


def typed_call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a typed API method of the official client; its failures become ``ApiError``s naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except ApiException as err:
        raise _failure(what, err.status or 0, err.body, err.reason or "") from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise ApiError(f"{what}: server not reachable: {err}") from err


class KubeApi:
    """Plain-JSON REST calls over an official ``ApiClient``."""

    def __init__(self, api_client: client.ApiClient, timeout_seconds: float = 30.0) -> None:
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
            raise _failure(f"{method} {path}", response.status, data)
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

    def find(self, path: str) -> Obj | None:
        """The object at ``path``, or None when the server says it does not exist (404)."""
        try:
            return self.get(path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

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


def _failure(what: str, status: int, data: bytes | str | None, fallback_reason: str = "") -> ApiError:
    """The error for a failed answer: the reason and message of its Status body where there is one."""
    raw = data.encode() if isinstance(data, str) else data or b""
    message, reason = "", fallback_reason
    try:
        body = json.loads(raw or b"{}")
        if isinstance(body, Mapping):
            message, reason = str(body.get("message", "")), str(body.get("reason", "")) or fallback_reason
    except ValueError:
        message = raw[:200].decode("utf-8", "replace")
    return api_error(what, status, reason, message)


def load_api_client(kubeconfig: str | None = None, *, retries: int | None = None) -> client.ApiClient:
    """An official client from ``kubeconfig``, else the in-cluster service account, else ~/.kube/config.

    ``retries``: how often a request whose connection fails is sent again (None: urllib3's default, 3);
    0 keeps a caller's per-request timeout the whole wait.
    """
    from kubernetes import config  # loading kubeconfig support is only worth it where a client is made

    configuration = client.Configuration()
    if retries is not None:
        configuration.retries = retries
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as err:
        raise ApiError(f"load Kubernetes client configuration ({kubeconfig or 'default'}): {err}") from err
    return client.ApiClient(configuration)
