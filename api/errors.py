"""The one exception hierarchy of XPUShare, at the bottom layer so that every package can raise it.

    XPUShareError
    ├── ConfigError                  bad user input (claim parameters, CLI or Helm values): names the field
    │   └── ConfigValidationError    a config decoder's verdict: every problem, as (field path, message)
    ├── DiscoveryError               a device backend could not enumerate devices
    └── (components add their own subclasses next to the code that raises them)

Library errors are wrapped with ``raise ... from err`` so the cause is never lost. ``ConfigValidationError``
carries every problem found, not only the first, so admission can answer one request with all of them and
the CLI can print them one per line; it is also a ``ValueError`` for callers that treat it as one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class XPUShareError(Exception):
    """Base of every error that XPUShare raises on purpose."""


class ConfigError(XPUShareError):
    """User-supplied configuration is invalid; the message names the field and the allowed values."""


class DiscoveryError(XPUShareError):
    """A discovery backend failed as a whole (library missing, enumeration failed)."""


class Issue(NamedTuple):
    """One problem as a ``(path, message)`` pair; ``path`` is dotted (``spec.config[0].opaque``)."""

    path: str
    message: str

    def __str__(self) -> str:
        # An empty path is the config's parameters as a whole (too large, not JSON, not an object).
        return f"{self.path or 'parameters'}: {self.message}"


def join_path(prefix: str, suffix: str) -> str:
    """Join two dotted paths; list indexes (``[0]``) attach without a dot."""
    if not prefix:
        return suffix
    if not suffix:
        return prefix
    return f"{prefix}{suffix}" if suffix.startswith("[") else f"{prefix}.{suffix}"


class ConfigValidationError(ConfigError, ValueError):
    """A config was rejected; ``issues`` lists every problem, and ``str()`` gives one line per issue."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        if not self.issues:
            raise ValueError("ConfigValidationError needs at least one issue")
        super().__init__("\n".join(str(issue) for issue in self.issues))

    def with_prefix(self, prefix: str) -> ConfigValidationError:
        """The same issues, located under ``prefix`` (where the config sits in a larger object)."""
        return ConfigValidationError(Issue(join_path(prefix, i.path), i.message) for i in self.issues)
