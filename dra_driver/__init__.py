"""The shared core of XPUShare: device model, discovery, settings, telemetry, CLI and the local simulation."""

__version__ = "0.1.0"
