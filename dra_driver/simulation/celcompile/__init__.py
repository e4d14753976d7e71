"""Compile-time checks of CEL device selectors, as a real Kubernetes v1.36 API server makes them.

kube-apiserver refuses a DeviceClass, ResourceClaim or ResourceClaimTemplate whose selector does not
parse, does not type-check against the DRA CEL environment, does not evaluate to a bool, or is estimated
to cost more than the limit. ``selector_refusal`` reproduces those decisions and messages for the embedded
API server, on cel-python's parser with a port of the relevant rules of cel-go's checker and cost
estimator (``syntax``, ``macros``, ``checker``, ``validators``, ``cost``).
"""

from dra_driver.simulation.celcompile.selector import MAX_EXPRESSION_BYTES, Refusal, selector_refusal

__all__ = ["MAX_EXPRESSION_BYTES", "Refusal", "selector_refusal"]
