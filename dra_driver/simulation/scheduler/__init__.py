"""The simulation's scheduler stand-in: claims from templates, structured allocation, binding.

It plays kube-scheduler's DRA plugin and the resourceclaim controller for pods that use our driver, so
the local simulation runs the whole claim path without a real control plane. It talks to the API server
only through the official ``kubernetes`` client.
"""

from dra_driver.simulation.scheduler.scheduler import PassReport, SimScheduler

__all__ = ["PassReport", "SimScheduler"]
