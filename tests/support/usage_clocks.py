"""Hand-moved clocks for the usage sampler and ``xpushare status``: monotonic and wall time advance
together, and waits move them instead of sleeping."""

from __future__ import annotations

from kubeletplugin.usage_history import NS_PER_S


class Clocks:
    """The sampler's monotonic and wall clocks, moved by the test."""

    def __init__(self) -> None:
        self.ns = 1000 * NS_PER_S

    def mono(self) -> int:
        return self.ns

    def wall(self) -> float:
        return 1_718_000_000 + self.ns / NS_PER_S


class Sleeps:
    """Stands in for ``time.sleep``: records each wait and moves the clocks by it."""

    def __init__(self, clocks: Clocks) -> None:
        self.clocks = clocks
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clocks.ns += int(seconds * NS_PER_S)
