"""The shared core of both components: the device model, discovery backends, quantities, the Kubernetes
access layer, files, telemetry and metrics. It imports only ``api`` and never a component."""
