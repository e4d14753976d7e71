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


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep host settings (OTEL endpoints, XPUSHARE_* overrides, LD_PRELOAD) out of every test."""
    for key in list(os.environ):
        if key.startswith(("XPUSHARE_", "OTEL_")) or key in {"LD_PRELOAD", "KUBECONFIG"}:
            monkeypatch.delenv(key, raising=False)


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
    if not SCHEMAS_DIR.is_dir():
        pytest.fail(f"upstream schemas not found at {SCHEMAS_DIR}: clone the project beside shared/")
    return SCHEMAS_DIR
