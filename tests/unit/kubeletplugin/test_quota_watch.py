"""The quota watcher's life cycle against a claim watch that opens while it is being stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubeletplugin.quota_watch import QuotaWatcher
from tests.support.plugin_preparer import MemoryReader, node_preparer


class Response:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def shutdown(self) -> None:
        self.closed.set()


class LateWatch:
    """A watch request that opens only once the watcher has been told to stop."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self.stopping = stopping
        self.response = Response()

    def watch_claims(self, version: str, timeout_s: int,
                     on_open: Callable[[Any], None] | None = None) -> Iterator[dict[str, Any]]:
        while not self.stopping():
            time.sleep(0.005)
        if on_open is not None:
            on_open(self.response)
        return iter(())

    def claim_event(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None:
        raise AssertionError("no claim was watched")


def test_a_watch_that_opens_after_stop_is_closed_and_the_thread_ends(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[arg-type]
    try:
        watcher: QuotaWatcher | None = None
        api = LateWatch(lambda: watcher is not None and watcher._stop.is_set())
        watcher = QuotaWatcher(node_preparer(tmp_path, MemoryReader()), api).start()
        watcher.stop(timeout_s=5)
        assert api.response.closed.is_set()  # closed by the watch thread, which cannot join itself
        assert watcher._thread is not None
        assert not watcher._thread.is_alive()
        assert errors == []
    finally:
        threading.excepthook = hook
