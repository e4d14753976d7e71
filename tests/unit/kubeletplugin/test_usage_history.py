"""The usage history's ring and percent math: shares over the last 10 s and 60 s from one sample a second,
exactly the same from the few published samples as from the whole ring."""

from __future__ import annotations

import random

import pytest

from kubeletplugin.usage_history import (
    HISTORY_SECONDS,
    NS_PER_S,
    WINDOWS_SECONDS,
    History,
    Point,
    Ring,
    Share,
    between,
    needed,
    percent,
    share,
)

KEY = ("claim-uid", "GPU-0")


def _steady(seconds: int, used_per_s: float, throttled_per_s: float = 0.0, start: Point | None = None,
            step_ns: int = NS_PER_S) -> list[Point]:
    """One sample a second of a claim charged ``used_per_s`` of every second (0.3: 30 %)."""
    first = start or Point(5 * NS_PER_S, 0, 0)
    return [Point(first.t_ns + n * step_ns, first.used_ns + round(n * used_per_s * step_ns),
                  first.throttled_ns + round(n * throttled_per_s * step_ns)) for n in range(seconds + 1)]


def _ring(points: list[Point]) -> tuple[Point, ...]:
    ring = Ring(HISTORY_SECONDS, 1000)
    for point in points:
        ring.add(point)
    return ring.points()


def test_percent_is_the_growth_over_the_span_and_a_drop_counts_as_nothing() -> None:
    assert percent(3 * NS_PER_S, 10.0) == 30.0
    assert percent(-5, 10.0) == 0.0
    assert percent(5, 0.0) is None
    assert between(Point(0, 0, 0), Point(2 * NS_PER_S, NS_PER_S, NS_PER_S // 2)) == Share(2.0, 50.0, 25.0)
    assert between(Point(7, 0, 0), Point(7, 9, 9)) is None


def test_the_last_10_s_and_the_last_60_s_are_told_apart() -> None:
    """50 s at 10 %, then 10 s at 70 % (throttled 20 %): the 10 s figure shows the change, the minute
    the average."""
    early = _steady(50, 0.1)
    late = _steady(10, 0.7, 0.2, start=early[-1])[1:]
    points = _ring(early + late)
    assert share(points, 10) == Share(10.0, 70.0, 20.0)
    assert share(points, 60) == Share(60.0, 20.0, 3.3)


def test_a_young_claim_s_figure_covers_what_was_seen_and_says_so() -> None:
    points = _ring(_steady(3, 0.4))
    assert share(points, 10) == Share(3.0, 40.0, 0.0)
    assert share(points[:1], 10) is None  # one sample: nothing to measure yet


def test_late_samples_still_start_the_window_near_10_s_back() -> None:
    """Ticks 1.04 s apart: the window starts at the sample 10.4 s back (within the slack), not 9.36 s."""
    points = _ring(_steady(20, 0.5, step_ns=1_040_000_000))
    result = share(points, 10)
    assert result is not None
    assert result == Share(10.4, 50.0, 0.0)


def test_the_ring_keeps_one_minute_and_is_bounded() -> None:
    ring = Ring(HISTORY_SECONDS, max_points=63)
    for point in _steady(300, 0.2):
        ring.add(point)
    points = ring.points()
    assert points[-1].t_ns - points[0].t_ns <= (HISTORY_SECONDS + 0.5) * NS_PER_S
    assert len(points) == HISTORY_SECONDS + 1
    small = Ring(HISTORY_SECONDS, max_points=5)  # a faster sampler: memory stays bounded anyway
    for point in _steady(300, 0.2, step_ns=NS_PER_S // 10):
        small.add(point)
    assert len(small.points()) == 5


def test_a_replaced_ledger_starts_the_ring_over_instead_of_a_negative_share() -> None:
    before = _steady(20, 0.5)
    fresh = _steady(4, 0.25, start=Point(before[-1].t_ns + NS_PER_S, 0, 0))  # counters back at zero
    points = _ring(before + fresh)
    assert points == tuple(fresh)
    assert share(points, 10) == Share(4.0, 25.0, 0.0)


def test_history_drops_unprepared_claims_and_never_spans_an_unreadable_gap() -> None:
    history = History(interval_s=1.0)
    other = ("other-uid", "GPU-0")
    for point in _steady(5, 0.5):
        history.record({KEY: point, other: point})
    history.record({KEY: None, other: Point(11 * NS_PER_S, 0, 0)})  # KEY's ledger unreadable this pass
    assert KEY not in history.points()
    history.record({KEY: Point(12 * NS_PER_S, 9 * NS_PER_S, 0)})  # other unprepared; KEY readable again
    assert set(history.points()) == {KEY}
    assert share(history.points()[KEY], 10) is None  # one sample after the gap: nothing claimed over it


@pytest.mark.parametrize("seed", range(20))
def test_the_published_samples_give_the_figures_of_the_whole_ring(seed: int) -> None:
    """What the plugin publishes (``needed``) answers each window exactly as its whole ring does, whatever
    the jitter of the ticks and the changes of rate."""
    rng = random.Random(seed)  # noqa: S311 - reproducible on purpose, not a secret
    history, t, used, throttled = History(interval_s=1.0), 0, 0, 0
    for _ in range(rng.randrange(2, 150)):
        t += rng.randrange(700_000_000, 1_600_000_000)
        used += rng.randrange(0, NS_PER_S)
        throttled += rng.randrange(0, NS_PER_S // 2)
        history.record({KEY: Point(t, used, throttled)})
    points = history.points()[KEY]
    published = needed(points)
    assert len(published) <= len(WINDOWS_SECONDS) + 1
    for window in WINDOWS_SECONDS:
        assert share(published, window) == share(points, window)
