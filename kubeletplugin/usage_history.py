"""A claim's device time over the last seconds: a ring of counter samples per (claim, device), and the
percent math that the plugin's sampler, ``xpushare status`` and its live two-read window all share.

The shims charge each claim's ledger with ever-growing counters (device time used, time throttled). The
share over a window is the counters' growth between two samples over the time between them, so one
sample a second for the last minute answers "over the last 10 s" and "over the last 60 s" at once, with
no waiting. A counter that goes down means the ledger was replaced (the plugin rebuilds a damaged one):
the ring starts over rather than show a negative share. A ledger that could not be read empties its
ring, so a figure never spans a gap in what was seen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NS_PER_S = 1_000_000_000
HISTORY_SECONDS = 60  # what the plugin keeps
WINDOWS_SECONDS = (10, 60)  # what ``xpushare status`` shows
# A window's first sample may be this much older than the window: with one sample a second, "the last
# 10 s" then starts at the sample nearest 10 s back instead of skipping to the one 9 s back.
SLACK_NS = NS_PER_S // 2

Key = tuple[str, str]  # (claim uid, device uuid)


@dataclass(frozen=True, slots=True)
class Point:
    """A claim ledger's counters at one moment of CLOCK_MONOTONIC."""

    t_ns: int
    used_ns: int
    throttled_ns: int


@dataclass(frozen=True, slots=True)
class Share:
    """Device time charged to a claim over ``seconds``, and the time its launches waited, both in percent
    of those seconds (``seconds`` is shorter than the window while the claim's history is younger)."""

    seconds: float
    measured_percent: float
    throttled_percent: float


def percent(delta_ns: int, seconds: float) -> float | None:
    """``delta_ns`` as a percent of ``seconds``, to 0.1 (None for an empty span; a drop counts as 0)."""
    if seconds <= 0:
        return None
    return round(100.0 * max(0, delta_ns) / (seconds * NS_PER_S), 1)


def between(first: Point, last: Point) -> Share | None:
    """The share from ``first`` to ``last`` (None when no time passed between them)."""
    seconds = (last.t_ns - first.t_ns) / NS_PER_S
    used = percent(last.used_ns - first.used_ns, seconds)
    throttled = percent(last.throttled_ns - first.throttled_ns, seconds)
    if used is None or throttled is None:
        return None
    return Share(round(seconds, 3), used, throttled)


def baseline(points: Sequence[Point], window_s: float) -> Point | None:
    """The oldest point at most ``window_s`` (plus ``SLACK_NS``) before the newest, the newest excluded;
    None with no such point (a lone sample, or a gap longer than the window)."""
    if len(points) < 2:
        return None
    earliest = points[-1].t_ns - int(window_s * NS_PER_S) - SLACK_NS
    return next((p for p in points[:-1] if p.t_ns >= earliest), None)


def share(points: Sequence[Point], window_s: float) -> Share | None:
    """The share over the last ``window_s`` seconds of ``points`` (oldest first), up to the newest."""
    first = baseline(points, window_s)
    return None if first is None else between(first, points[-1])


def needed(points: Sequence[Point], windows: Iterable[float] = WINDOWS_SECONDS) -> tuple[Point, ...]:
    """The few points that answer every window exactly as the whole ring does: each window's baseline and
    the newest (what the plugin publishes instead of the whole ring)."""
    if not points:
        return ()
    chosen = {b for w in windows if (b := baseline(points, w)) is not None} | {points[-1]}
    return tuple(sorted(chosen, key=lambda p: p.t_ns))


class Ring:
    """One (claim, device)'s points of the last ``horizon_s`` seconds, oldest first, at most
    ``max_points`` (a bound on memory whatever the sampling rate)."""

    def __init__(self, horizon_s: float, max_points: int) -> None:
        self._horizon_ns = int(horizon_s * NS_PER_S) + SLACK_NS
        self._points: deque[Point] = deque(maxlen=max_points)

    def add(self, point: Point) -> None:
        """Append ``point``; a clock or counter going back (a replaced ledger) starts the ring over."""
        if self._points:
            last = self._points[-1]
            if (point.t_ns <= last.t_ns or point.used_ns < last.used_ns
                    or point.throttled_ns < last.throttled_ns):
                self._points.clear()
        self._points.append(point)
        while self._points[0].t_ns < point.t_ns - self._horizon_ns:
            self._points.popleft()

    def points(self) -> tuple[Point, ...]:
        return tuple(self._points)


class History:
    """Every prepared (claim, device)'s ring. ``record`` is the sampler's one pass; not thread-safe (the
    sampler's thread alone uses it)."""

    def __init__(self, interval_s: float = 1.0, horizon_s: float = HISTORY_SECONDS) -> None:
        self._horizon_s = horizon_s
        self._max_points = int(horizon_s / interval_s) + 3  # the horizon, its slack and one late tick
        self._rings: dict[Key, Ring] = {}

    def record(self, readings: Mapping[Key, Point | None]) -> None:
        """One pass over the prepared claims: a point per readable ledger, the ring of an unreadable one
        emptied, and the rings of claims no longer in ``readings`` (unprepared) dropped."""
        for gone in self._rings.keys() - readings.keys():
            del self._rings[gone]
        for key, point in readings.items():
            if point is None:
                self._rings.pop(key, None)
                continue
            ring = self._rings.get(key)
            if ring is None:
                ring = self._rings[key] = Ring(self._horizon_s, self._max_points)
            ring.add(point)

    def points(self) -> dict[Key, tuple[Point, ...]]:
        return {key: ring.points() for key, ring in self._rings.items()}
