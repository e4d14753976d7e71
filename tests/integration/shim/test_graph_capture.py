"""CUDA graph capture under the shim: the capture must come out whole, and the graph's work is measured
when it is launched.

While a stream captures, launches on it are recorded into a graph, not run, and in the default (global)
mode the driver refuses, and spoils the capture for, a query or synchronize of an event recorded in the
capture. A shim that covered the captured launches with its own events and then polled them broke every
``torch.cuda.graph`` capture. The fake driver refuses and spoils as the real one does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dra_driver.core.devices import Scheduling
from tests.integration.shim.conftest import MIB, claim_usage
from tests.support.shimlib import ShimSetup

KERNELS = 40  # of 1 ms each: enough launches for the shim's slow path to run during the capture


@pytest.mark.parametrize("scheduling", list(Scheduling), ids=[s.value for s in Scheduling])
@pytest.mark.parametrize("cores", [100, 30], ids=["whole device", "30 percent"])
def test_a_capture_comes_out_whole_and_its_replay_is_charged(setup: ShimSetup, cuda_client: Path,
                                                             scheduling: Scheduling, cores: int) -> None:
    setup.add_device(0, 16 * MIB, cores=cores, scheduling=scheduling)
    result = setup.run([cuda_client, "gpa", "--", "capture", KERNELS], timeout=60)
    captured = f"capture rc=0 end=0 graph_ns={KERNELS * 1_000_000}"
    assert captured in result.stdout, result.stdout + result.stderr
    assert "replay rc=0" in result.stdout, result.stdout
    charged = claim_usage(setup.ledger_path(0)).used_ns
    assert charged >= KERNELS * 1_000_000 * 0.9, charged  # the replay ran the graph's 40 ms
