"""Fixtures every test may use. Component-specific fixtures live in the conftest of their folder."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
SCHEMAS_DIR = SHARED_DIR / "schemas"
K8S_SCHEMAS_DIR = SCHEMAS_DIR / "k8s"
NO_SHARED = f"needs the upstream schemas in {SCHEMAS_DIR} (../shared beside the project)"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep host settings (OTEL endpoints, XPUSHARE_* overrides, LD_PRELOAD) out of every test.

    Where ``../shared`` is beside the project, every embedded API server of the tests (in this process
    or in a child) validates against the upstream schemas, named by the variable the product reads.
    """
    for key in list(os.environ):
        if key.startswith(("XPUSHARE_", "OTEL_")) or key in {"LD_PRELOAD", "KUBECONFIG"}:
            monkeypatch.delenv(key, raising=False)
    if K8S_SCHEMAS_DIR.is_dir():
        monkeypatch.setenv("XPUSHARE_K8S_SCHEMAS", str(K8S_SCHEMAS_DIR))


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """The CLI's logging set-up replaces the root logger's handlers and level; undo it after each test so
    one test's configuration never changes what another test's log capture sees."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """The upstream schemas (CDI, Kubernetes); the test is skipped in a clone without ``../shared``."""
    if not SCHEMAS_DIR.is_dir():
        pytest.skip(NO_SHARED)
    return SCHEMAS_DIR


@pytest.fixture(scope="session")
def k8s_schemas(schemas_dir: Path) -> Path:
    """For tests of what the embedded API server does with the upstream Kubernetes schemas loaded."""
    if not K8S_SCHEMAS_DIR.is_dir():
        pytest.skip(NO_SHARED)
    return K8S_SCHEMAS_DIR
