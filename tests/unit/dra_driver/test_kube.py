"""The one API error type and backoff loop: which failures are retried, how long it waits, when it stops."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes.client.exceptions import ApiException

from dra_driver.core.kube import (
    ApiError,
    Backoff,
    ConflictError,
    api_error,
    conflicts_only,
    typed_call,
    with_retries,
)

SETTINGS = Backoff(attempts=4, base_seconds=0.1, cap_seconds=0.25)


def failing(statuses: list[int], calls: list[int]) -> Callable[[], str]:
    def action() -> str:
        calls.append(1)
        if statuses:
            status = statuses.pop(0)
            raise api_error("test", status)
        return "done"

    return action


@pytest.mark.parametrize("status", [0, 409, 429, 500, 503])
def test_transient_errors_are_retried_with_capped_backoff(status: int) -> None:
    calls: list[int] = []
    sleeps: list[float] = []
    result = with_retries(failing([status] * 3, calls), "test", SETTINGS, sleeps.append)
    assert result == "done"
    assert len(calls) == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        ceiling = min(SETTINGS.cap_seconds, SETTINGS.base_seconds * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_permanent_errors_are_raised_at_once(status: int) -> None:
    calls: list[int] = []
    with pytest.raises(ApiError) as caught:
        with_retries(failing([status], calls), "test", SETTINGS, lambda _: None)
    assert caught.value.status == status
    assert len(calls) == 1


def test_retries_stop_after_the_configured_attempts() -> None:
    calls: list[int] = []
    with pytest.raises(ApiError, match="test: HTTP 503"):
        with_retries(failing([503] * 10, calls), "test", SETTINGS, lambda _: None)
    assert len(calls) == SETTINGS.attempts


def test_read_modify_write_loops_retry_conflicts_only_and_without_jitter() -> None:
    calls: list[int] = []
    sleeps: list[float] = []
    backoff = Backoff(attempts=5, base_seconds=0.02, cap_seconds=1.0, jitter=False)
    assert with_retries(failing([409, 409], calls), "test", backoff, sleeps.append, retry_on=conflicts_only)
    assert sleeps == [0.02, 0.04]
    with pytest.raises(ApiError) as caught:
        with_retries(failing([503], []), "test", backoff, sleeps.append, retry_on=conflicts_only)
    assert caught.value.status == 503
    plain_409 = ApiError("allocated by someone else", 409)
    assert plain_409.retryable
    assert not conflicts_only(plain_409), "only a ConflictError means re-read"


def test_a_deadline_ends_the_retries_before_the_next_delay_would_pass_it() -> None:
    calls: list[int] = []
    backoff = Backoff(attempts=None, base_seconds=60.0, cap_seconds=60.0, deadline_seconds=1.0, jitter=False)
    with pytest.raises(ApiError, match="HTTP 500"):
        with_retries(failing([500] * 3, calls), "test", backoff, lambda _: None)
    assert len(calls) == 1


def test_typed_client_failures_become_api_errors_with_the_servers_reason() -> None:
    def conflict() -> None:
        raise ApiException(status=409, reason="Conflict")

    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = '{"kind": "Status", "reason": "Invalid", "message": "spec.devices: too many"}'

    def invalid() -> None:
        raise error

    def refused() -> None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(ConflictError):
        typed_call("update claim", conflict)
    with pytest.raises(ApiError, match=r"^create slice: HTTP 422 Invalid: spec.devices: too many$") as caught:
        typed_call("create slice", invalid)
    assert (caught.value.status, caught.value.reason, caught.value.retryable) == (422, "Invalid", False)
    with pytest.raises(ApiError, match="server not reachable") as unreachable:
        typed_call("list claims", refused)
    assert unreachable.value.status == 0
    assert unreachable.value.retryable
