"""Fixtures for the discovery tests: the fake vendor libraries, built once and configured per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from dra_driver.simulation.cbuild import have_compiler
from tests.support.fakevendor import build_fake_dcmi, build_fake_nvml

NO_COMPILER = "no C compiler: the fake vendor libraries cannot be built"


@pytest.fixture(scope="session")
def fake_nvml_library() -> Path:
    if not have_compiler():
        pytest.skip(NO_COMPILER)
    return build_fake_nvml()


@pytest.fixture(scope="session")
def fake_dcmi_library() -> Path:
    if not have_compiler():
        pytest.skip(NO_COMPILER)
    return build_fake_dcmi()


@pytest.fixture
def nvml_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a test writes the fake NVML's configuration (FAKE_NVML_CONFIG points here)."""
    path = tmp_path / "nvml.conf"
    monkeypatch.setenv("FAKE_NVML_CONFIG", str(path))
    return path


@pytest.fixture
def dcmi_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a test writes the fake DCMI's configuration (FAKE_DCMI_CONFIG points here)."""
    path = tmp_path / "dcmi.conf"
    monkeypatch.setenv("FAKE_DCMI_CONFIG", str(path))
    return path
