"""Backoff for API errors: which statuses are retried, how long it waits, when it gives up."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from controller.publisher.kubeapi import ApiError, with_retries
from controller.settings import RetrySettings

SETTINGS = RetrySettings(attempts=4, base_seconds=0.1, cap_seconds=0.25)


def failing(statuses: list[int], calls: list[int]) -> Callable[[], str]:
    def action() -> str:
        calls.append(1)
        if statuses:
            status = statuses.pop(0)
            raise ApiError(f"HTTP {status}", status)
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
    with pytest.raises(ApiError, match="HTTP 503"):
        with_retries(failing([503] * 10, calls), "test", SETTINGS, lambda _: None)
    assert len(calls) == SETTINGS.attempts
