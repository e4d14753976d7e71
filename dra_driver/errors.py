"""The one exception hierarchy of XPUShare.

    XPUShareError
    ├── ConfigError          bad user input (claim parameters, CLI or Helm values): names the field
    ├── DiscoveryError       a device backend could not enumerate devices
    └── (components add their own subclasses next to the code that raises them)

Library errors are wrapped with ``raise ... from err`` so the cause is never lost.
"""


class XPUShareError(Exception):
    """Base of every error that XPUShare raises on purpose."""


class ConfigError(XPUShareError):
    """User-supplied configuration is invalid; the message names the field and the allowed values."""


class DiscoveryError(XPUShareError):
    """A discovery backend failed as a whole (library missing, enumeration failed)."""
