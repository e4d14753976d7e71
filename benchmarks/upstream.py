"""Benchmarks of the embedded API server measure it validating against the upstream Kubernetes schemas
when ``../shared`` is beside the project, as the tests do (the package itself never looks there)."""

from __future__ import annotations

import os
from pathlib import Path

K8S_SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "k8s"


def use_upstream_schemas() -> str:
    """Point ``$XPUSHARE_K8S_SCHEMAS`` at the upstream schemas if present; say which for the report."""
    if K8S_SCHEMAS.is_dir():
        os.environ.setdefault("XPUSHARE_K8S_SCHEMAS", str(K8S_SCHEMAS))
    named = os.environ.get("XPUSHARE_K8S_SCHEMAS")
    return f"schemas: {named}" if named else "schemas: none (DRA limits only)"
