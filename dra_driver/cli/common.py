"""What the long-running subcommands share: the metrics flag and stopping on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


def add_metrics_address(add: Callable[..., Any], default_port: int) -> None:
    """``--metrics-address``: where /metrics, /healthz and /readyz listen (every interface by default)."""
    add(
        "--metrics-address",
        default=f":{default_port}",
        help=f"HOST:PORT of /metrics, /healthz and /readyz (default :{default_port}: every interface; "
        "empty or 0: off)",
    )


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM (the kubelet stopping the pod) or SIGINT (Ctrl-C)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop

