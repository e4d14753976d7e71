"""The node never gives a device out beyond its capacity, whatever the allocations say."""

from __future__ import annotations

import threading

import pytest

from dra_driver.core.devices import GIB
from kubeletplugin.accounting import Accounting, Holding, OvercommitError


def _share(memory_gib: int, cores: int, share: str | None = "s", device: str = "npu-0") -> Holding:
    return Holding(device, share, "NPU-0", memory_gib * GIB, cores)


def test_shares_fit_until_memory_runs_out() -> None:
    accounting = Accounting({"NPU-0": 64 * GIB})
    accounting.reserve("a", "claim a", [_share(32, 25, "s1")], dict)
    accounting.reserve("b", "claim b", [_share(32, 25, "s2")], dict)
    with pytest.raises(OvercommitError, match=r"claim c: device npu-0 would be over-committed: memory"):
        accounting.reserve("c", "claim c", [_share(1, 0, "s3")], dict)
    assert accounting.used("NPU-0") == (64 * GIB, 50)


def test_guaranteed_cores_never_exceed_100_percent() -> None:
    accounting = Accounting({"NPU-0": 64 * GIB})
    accounting.reserve("a", "claim a", [_share(1, 60, "s1")], dict)
    with pytest.raises(OvercommitError, match="101% of compute"):
        accounting.reserve("b", "claim b", [_share(1, 41, "s2")], dict)


def test_a_device_without_share_id_belongs_to_one_claim() -> None:
    accounting = Accounting({"NPU-0": 64 * GIB})
    accounting.reserve("a", "claim a", [_share(1, 0, None)], dict)
    with pytest.raises(OvercommitError, match="already prepared for claim default/a"):
        accounting.reserve("b", "claim b", [_share(1, 0, "s2")], lambda: {"a": "claim default/a"})


def test_release_frees_capacity_and_reserving_again_is_idempotent() -> None:
    accounting = Accounting({"NPU-0": 64 * GIB})
    accounting.reserve("a", "claim a", [_share(64, 100, "s1")], dict)
    accounting.reserve("a", "claim a", [_share(64, 100, "s1")], dict)
    accounting.release("a")
    accounting.reserve("b", "claim b", [_share(64, 100, "s2")], dict)
    assert accounting.used("NPU-0") == (64 * GIB, 100)


def test_concurrent_reservations_never_exceed_capacity() -> None:
    accounting = Accounting({"NPU-0": 64 * GIB})
    accepted: list[str] = []
    start = threading.Barrier(100)

    def reserve(n: int) -> None:
        start.wait()
        try:
            accounting.reserve(f"c{n}", f"claim {n}", [_share(1, 3, f"s{n}")], dict)
            accepted.append(f"c{n}")
        except OvercommitError:
            pass

    threads = [threading.Thread(target=reserve, args=(n,)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(accepted) == 33  # 33 * 3% fits in 100%, the 34th does not
    assert accounting.used("NPU-0") == (33 * GIB, 99)
