"""A finding of ``xpushare diagnose``: what it is about, what is wrong (or what was found) and what to do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"  # a claim's limits are not what the plugin recorded, or its containers cannot start
    WARNING = "warning"  # works, but not as it should (accounting alone, stale entries, refusals)
    INFO = "info"  # a fact the diagnosis rests on (a version found, where the logs are)


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    subject: str  # "claim ns/name (uid)", "device UUID", "checkpoint record F", "NVIDIA driver"
    message: str
    hint: str


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Errors, then warnings, then facts (each group in the order found)."""
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: rank[f.severity])
