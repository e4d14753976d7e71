"""The optional parts of the package: what a subcommand needs beyond the components' dependencies.

The node plugin and the controller install without the simulation's libraries (cel-python for CEL
selectors, jsonschema for schema checks); ``xpushare demo`` and ``xpushare sim`` need them. Instead of a
traceback, a missing one becomes an error that says how to install it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from api.errors import XPUShareError

SIM_EXTRA = "sim"
# Top-level modules that only the ``sim`` extra installs.
SIM_MODULES = frozenset({"celpy", "jsonschema", "referencing", "lark"})


class MissingExtraError(XPUShareError):
    """A subcommand needs an optional dependency that is not installed."""


@contextlib.contextmanager
def requires_sim_extra(command: str) -> Iterator[None]:
    """Turn the import failure of a simulation dependency into an error naming the extra to install."""
    try:
        yield
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing not in SIM_MODULES:
            raise
        raise MissingExtraError(
            f"'xpushare {command}' needs the simulation's dependencies ({missing} is not installed): "
            f"pip install 'xpushare[{SIM_EXTRA}]'"
        ) from err
