"""CUDA graphs on a real GPU: work issued by graph replay (one cuGraphLaunch for a batch of matmuls) is
charged and throttled like launched kernels. Compared with the same graph loop alone without the shim."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gpu.torchlib import (
    Claim,
    Gpu,
    GpuNode,
    Tenant,
    TenantRun,
    Workload,
    run_30_70,
    run_alone_without_shim,
    run_tenants,
    share_per_clock,
)

pytestmark = pytest.mark.gpu

SECONDS = 6.0
GRAPHS = Workload(model="graph")


@pytest.fixture(scope="module")
def graph_alone(gpu: Gpu, shim_library: Path, tmp_path_factory: pytest.TempPathFactory) -> TenantRun:
    return run_alone_without_shim(GpuNode(tmp_path_factory.mktemp("graph-alone"), gpu, shim_library), SECONDS,
                                  GRAPHS)


@pytest.mark.timeout(300)
def test_graph_replays_of_two_tenants_split_30_70(node: GpuNode, graph_alone: TenantRun) -> None:
    low, high, runs = run_30_70(node, SECONDS, work=GRAPHS)
    got = f"matmuls per window {[list(r.counts) for r in runs]}, alone {list(graph_alone.counts)}"
    print(f"graphs 30/70 split {low:.1f}/{high:.1f}: {got}")
    assert abs(low - 30) <= 5, f"30 % tenant got {low:.1f} %: {got}"
    assert abs(high - 70) <= 5, f"70 % tenant got {high:.1f} %: {got}"


@pytest.mark.timeout(300)
def test_graph_replays_of_a_fixed_30_percent_tenant_are_capped(node: GpuNode, graph_alone: TenantRun) -> None:
    (run,) = run_tenants(node, [Tenant(Claim("fixed30", cores=30, policy="fixed"))], SECONDS, work=GRAPHS)
    share, raw = share_per_clock(run, graph_alone)  # as the fixed matmul tenant is judged
    got = f"{share:.1f} % per clock cycle ({raw:.1f} % raw): {list(run.counts)} vs {list(graph_alone.counts)}"
    print(f"graphs fixed 30: {got}")
    assert 20 <= share <= 35, got
