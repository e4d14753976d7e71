"""The plugin's usage history: once a second, every prepared claim's ledger of every device it holds is
read and the last minute published for ``xpushare status`` (``kubeletplugin.usage_file``).

``status`` alone could only measure the seconds it waits; the plugin runs all the time, so it keeps the
ring and ``status`` shows the last 10 s at once. The cost is one pass a second over the prepared claims:
the same bounded pread of each ledger's head that the metrics use (``Ledgers.usage``: never a map or a
lock; an unreadable ledger is one warning, then a gap in its ring), a few hundred bytes of memory per
claim and device, and one small atomic write to the run directory (tmpfs on a real node), not flushed.
A pass that fails is logged once and the next one tries again; the thread ends on ``stop``, which also
removes the file, so ``status`` says the plugin is not running rather than show an old minute.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from kubeletplugin.physical import prepared_by_device
from kubeletplugin.state import ClaimPreparer
from kubeletplugin.usage_file import write_usage_file
from kubeletplugin.usage_history import History, Key, Point, needed

log = logging.getLogger(__name__)


class UsageSampler:
    """Samples the prepared claims' ledgers every ``interval_s`` and publishes them; ``start`` then
    ``stop``."""

    def __init__(
        self,
        preparer: ClaimPreparer,
        path: Path,
        *,
        interval_s: float = 1.0,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.preparer, self.path, self.interval_s = preparer, path, interval_s
        self.clock_ns, self.wall = clock_ns, wall
        self.history = History(interval_s)
        # The last pass's points, replaced whole: read by the metrics collector's thread without a lock.
        self.published: Mapping[Key, tuple[Point, ...]] = {}
        self._failing = False  # the last pass failed (logged)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        """One pass: read every prepared claim's ledger heads, add them to the history, publish it."""
        readings = self._read()
        self.history.record(readings)
        samples = {key: needed(points) for key, points in self.history.points().items()}
        self.published = samples
        write_usage_file(self.path, samples, self.clock_ns(), self.wall())

    def _read(self) -> dict[Key, Point | None]:
        """Each (claim, device) prepared now: its counters, None where its ledger cannot be read."""
        ledgers = self.preparer.ledgers
        if ledgers is None or not ledgers.enabled():
            return {}
        by_device = prepared_by_device(self.preparer.store.claims())
        now = self.clock_ns()
        usage = ledgers.usage(by_device)
        readings: dict[Key, Point | None] = {}
        for uuid, uids in by_device.items():
            read = usage[uuid].claims if uuid in usage else {}
            for uid in uids:
                head = read.get(uid)
                readings[(uid, uuid)] = None if head is None else Point(now, head.used_ns, head.throttled_ns)
        return readings

    def start(self) -> UsageSampler:
        self._thread = threading.Thread(target=self._run, name="usage-history", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            self._pass()
            if self._stop.wait(self.interval_s):
                return

    def _pass(self) -> None:
        """``sample``; the first failure is a warning, the next ones debug lines, a recovery one line."""
        try:
            self.sample()
        except Exception:  # a full disk or a bug must not end the history for good
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "usage history: pass failed", exc_info=True, extra={"path": str(self.path)})
            self._failing = True
            return
        if self._failing:
            log.info("usage history: written again", extra={"path": str(self.path)})
            self._failing = False

    def stop(self) -> None:
        """End the thread (a pass in flight finishes first), then remove the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
