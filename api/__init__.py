"""XPUShare's versioned configuration types and the kubelet's gRPC protocols.

Types only: nothing here talks to a cluster or a device, so every component can import it.
"""
