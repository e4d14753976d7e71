"""Fixtures every test may use. Component-specific fixtures live in the conftest of their folder."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    if not SCHEMAS_DIR.is_dir():
        pytest.fail(f"upstream schemas not found at {SCHEMAS_DIR}: clone the project beside shared/")
    return SCHEMAS_DIR
