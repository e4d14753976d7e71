"""The one interface every device backend implements, and the factory that picks a backend.

Everything above discovery (slice publishing, claim preparation, the health stream) sees only
``DeviceBackend`` and plain ``Device`` values; vendor libraries stay behind the vendors' own discovery
modules (``dra_driver.core.vendors.<vendor>.discovery``). Backends are chosen by name (``mock``, or a
vendor profile's backend: ``nvidia``, ``ascend``) or detected (``auto``), and take their options as
keyword arguments, each with an ``XPUSHARE_*`` environment variable as the default so an operator can
point a backend at a library without a code change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from api.errors import ConfigError, DiscoveryError
from dra_driver.core import vendors
from dra_driver.core.devices import Device

log = logging.getLogger(__name__)

MOCK = "mock"
# The mock backend's options; each vendor profile names its own backend's.
_MOCK_OPTIONS: Mapping[str, str] = {"inventory": "XPUSHARE_INVENTORY"}

BACKEND_KINDS = (MOCK, *(profile.backend for profile in vendors.DETECTION_ORDER), "auto")

# Option name -> environment variable consulted when the option is not given.
OPTION_ENV: Mapping[str, str] = {
    **_MOCK_OPTIONS,
    **{key: env for profile in vendors.DETECTION_ORDER for key, env in profile.backend_options.items()},
}
BACKEND_ENV = "XPUSHARE_DISCOVERY_BACKEND"


@runtime_checkable
class DeviceBackend(Protocol):
    """A source of devices on this node.

    ``discover`` enumerates; ``check_health`` is cheap and called periodically: it returns copies of the
    given devices with refreshed health (never raising for one sick device: that device comes back
    UNHEALTHY with a message). ``close`` releases the vendor library.
    """

    name: str

    def discover(self) -> list[Device]: ...

    def check_health(self, devices: list[Device]) -> list[Device]: ...

    def close(self) -> None: ...


def resolve_options(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Fill options that were not given (or given as None) from their environment variables."""
    env = os.environ if environ is None else environ
    resolved = {key: value for key, value in options.items() if value is not None}
    for key, variable in OPTION_ENV.items():
        if key not in resolved and env.get(variable):
            resolved[key] = env[variable]
    return resolved


def _open_one(kind: str, options: Mapping[str, Any]) -> DeviceBackend:
    """Open one backend with the options it accepts (``open_backend`` has refused unknown ones)."""
    constructor: Callable[..., DeviceBackend]
    if kind == MOCK:
        # Imported here, as each profile imports its backend, so that no backend loads what it needn't.
        from dra_driver.core.discovery.mock import MockBackend

        constructor, accepted = MockBackend, _MOCK_OPTIONS
    else:
        profile = vendors.profile_of_backend(kind)
        constructor, accepted = profile.open_backend, profile.backend_options
    return constructor(**{key: value for key, value in options.items() if key in accepted})


def _auto(options: Mapping[str, Any]) -> DeviceBackend:
    """Try each vendor's backend in detection order; report every attempt when none works."""
    failures: list[str] = []
    for kind in (profile.backend for profile in vendors.DETECTION_ORDER):
        try:
            backend = _open_one(kind, options)
        except DiscoveryError as err:
            failures.append(f"{kind}: {err}")
            continue
        log.info("discovery backend detected", extra={"backend": kind})
        return backend
    raise DiscoveryError("no accelerator backend found (tried " + "; ".join(failures) + ")")


def open_backend(
    kind: str = "auto", environ: Mapping[str, str] | None = None, **options: Any
) -> DeviceBackend:
    """Open the backend ``kind`` (mock, nvidia, ascend or auto) with ``options`` and env defaults.

    Raises ``ConfigError`` for an unknown kind or option, ``DiscoveryError`` when the backend's library
    or tool cannot be used (the message names what was tried and why it failed).
    """
    if kind not in BACKEND_KINDS:
        raise ConfigError(f"discovery backend: {kind!r} is not one of {', '.join(BACKEND_KINDS)}")
    resolved = resolve_options(options, environ)
    unknown = sorted(set(resolved) - set(OPTION_ENV))
    if unknown:
        allowed = ", ".join(sorted(OPTION_ENV))
        raise ConfigError(f"discovery options: unknown {', '.join(unknown)} (allowed: {allowed})")
    if kind == "auto":
        return _auto(resolved)
    return _open_one(kind, resolved)


def backend_from_settings(settings: object, environ: Mapping[str, str] | None = None) -> DeviceBackend:
    """Open the backend that a settings object (attributes) or mapping (keys) names.

    Reads ``discovery_backend`` (or ``backend``; default: ``$XPUSHARE_DISCOVERY_BACKEND``, then ``auto``)
    and every option in ``OPTION_ENV`` that is present and not None.
    """

    def lookup(key: str) -> Any:
        if isinstance(settings, Mapping):
            return settings.get(key)
        return getattr(settings, key, None)

    env = os.environ if environ is None else environ
    kind = lookup("discovery_backend") or lookup("backend") or env.get(BACKEND_ENV) or "auto"
    options = {key: lookup(key) for key in OPTION_ENV}
    return open_backend(str(kind), environ=env, **{k: v for k, v in options.items() if v is not None})
