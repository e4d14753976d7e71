"""The API server as ``xpushare diagnose`` reads it: a few GETs and lists, bounded by one budget in all.

Requests go through ``KubeApi`` (the official client's own ApiClient, plain JSON). Each request may wait
only what is left of the budget, so an API server that does not answer costs ``budget_s`` seconds at
most; make the client with ``load_api_client(..., retries=0)`` so that urllib3 does not repeat a request
whose connection failed. Every failure is an ``ApiError`` (the client's TLS failures and an answer that
is not JSON included), for the checks to turn into findings, never a traceback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_driver.core.kube import ApiError, KubeApi
from dra_driver.core.kubetypes import Obj, dig

T = TypeVar("T")

RESOURCE_CLAIMS = "/apis/resource.k8s.io/v1/resourceclaims"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # a DNS subdomain, as object names are


class BudgetSpentError(ApiError):
    """The time diagnose may wait on the API server ran out before this request was sent."""


def text(obj: object, *keys: str) -> str:
    """The string at ``keys`` ("" when it is not one)."""
    value = dig(obj, *keys)
    return value if isinstance(value, str) else ""


def items(obj: object, *keys: str) -> list[Obj]:
    """The objects of the list at ``keys`` (entries that are not objects are dropped)."""
    value = dig(obj, *keys)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def object_name(value: object) -> str | None:
    """``value`` when it can be an object's name in a URL path (a DNS subdomain), else None."""
    return value if isinstance(value, str) and _NAME.match(value) else None


class ClusterReader:
    """GETs and lists whose waits together stay within ``budget_s``."""

    def __init__(
        self, api_client: client.ApiClient, budget_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api = KubeApi(api_client, budget_s)
        self._budget_s = budget_s
        self._clock = clock
        self._end = clock() + budget_s

    def _call(self, what: str, call: Callable[[], T]) -> T:
        left = self._end - self._clock()
        if left <= 0:
            raise BudgetSpentError(f"{what}: not sent, the API server used up all {self._budget_s:g} s")
        self._api.timeout_seconds = left
        try:
            return call()
        except ApiException as err:  # the client raises this itself for TLS failures
            raise ApiError(f"{what}: {err.reason}", err.status or 0, str(err.reason or "")) from err
        except ValueError as err:  # a 2xx answer that is not JSON: not an API server
            raise ApiError(f"{what}: the answer is not JSON ({err})") from err

    def get(self, path: str) -> Obj | None:
        """The object at ``path``; None when the server says it does not exist (404)."""

        return self._call(f"GET {path}", lambda: self._api.find(path))

    def list(self, path: str, **selectors: str) -> list[Obj]:
        """Every item of a collection (all pages); ``selectors`` are query parameters."""
        found = self._call(f"GET {path}", lambda: self._api.list(path, **selectors))
        return [item for item in found if isinstance(item, dict)]
