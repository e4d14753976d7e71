"""Device discovery: one ``DeviceBackend`` interface over the mock inventory and the vendors' backends.

This package holds what is vendor-neutral: the interface and ``open_backend`` (``base``), node facts
from sysfs (``host``) and the mock backend (``mock``, which simulates devices of any type). Each
vendor's backend lives with its profile in ``dra_driver.core.vendors.<vendor>``, the only place its
library is loaded. Callers open a backend with ``open_backend`` or ``backend_from_settings`` and work
with ``dra_driver.core.devices.Device`` values. See docs/discovery.md for options and troubleshooting.
"""

from dra_driver.core.discovery.base import (
    BACKEND_ENV,
    BACKEND_KINDS,
    OPTION_ENV,
    DeviceBackend,
    backend_from_settings,
    open_backend,
)

__all__ = [
    "BACKEND_ENV",
    "BACKEND_KINDS",
    "OPTION_ENV",
    "DeviceBackend",
    "backend_from_settings",
    "open_backend",
]
