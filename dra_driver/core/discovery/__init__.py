"""Device discovery: one ``DeviceBackend`` interface over the mock inventory, NVML and DCMI/npu-smi.

Only this package imports vendor libraries (``pynvml`` in ``nvidia``, the DCMI cffi declarations in
``dcmi``); callers open a backend with ``open_backend`` or ``backend_from_settings`` and work with
``dra_driver.core.devices.Device`` values. See docs/discovery.md for options and troubleshooting.
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
