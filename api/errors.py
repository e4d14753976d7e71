"""The error that every config decoder in ``api`` raises.

``api`` imports no component, so this error cannot derive from ``dra_driver.errors.XPUShareError``;
it derives from ``ValueError`` instead, and components wrap it (``raise ConfigError(...) from err``) at
their edge. It carries every problem found, not only the first, as ``(field path, message)`` pairs, so
admission can answer one request with all of them and the CLI can print them one per line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


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


class ConfigValidationError(ValueError):
    """A config was rejected; ``issues`` lists every problem, and ``str()`` gives one line per issue."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        if not self.issues:
            raise ValueError("ConfigValidationError needs at least one issue")
        super().__init__("\n".join(str(issue) for issue in self.issues))

    def with_prefix(self, prefix: str) -> ConfigValidationError:
        """The same issues, located under ``prefix`` (where the config sits in a larger object)."""
        return ConfigValidationError(Issue(join_path(prefix, i.path), i.message) for i in self.issues)
