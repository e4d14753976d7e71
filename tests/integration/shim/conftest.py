"""Fixtures for the shim's process-level tests: a claim directory and the compiled client programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dra_driver.simulation.cbuild import have_compiler
from shim.ledger import ClaimLedger, ClaimUsage, ProcessUsage, read_claim_usage
from tests.support.shimlib import ShimSetup, build_program, build_shim

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _compiled_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    if not have_compiler():
        pytest.skip("no C compiler: the shim and the fake runtimes cannot be built")
    monkeypatch.setenv("XPUSHARE_SHIM_LIBRARY", str(build_shim()))


@pytest.fixture
def setup(tmp_path: Path) -> ShimSetup:
    return ShimSetup(tmp_path)


@pytest.fixture(scope="session")
def cuda_client() -> Path:
    return build_program("cuda_client")


@pytest.fixture(scope="session")
def acl_client() -> Path:
    return build_program("acl_client")


def claim_usage(path: Path) -> ClaimUsage:
    """A claim ledger's head, read as the node plugin reads it."""
    return read_claim_usage(path)


def claim_processes(path: Path) -> tuple[ProcessUsage, ...]:
    """The process slots in use in a claim ledger."""
    with ClaimLedger.open(path) as ledger:
        return ledger.processes()
