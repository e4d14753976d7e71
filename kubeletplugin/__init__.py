"""The node component: kubelet registration, the DRA gRPC services, claim preparation and CDI specs."""
