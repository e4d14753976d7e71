"""NVIDIA GPUs: the profile (``profile``) and NVML discovery (``discovery``, the only user of pynvml).

Importing this package loads the profile only; pynvml is loaded when the backend is opened.
"""

from dra_driver.core.vendors.nvidia.profile import PROFILE, NvidiaProfile

__all__ = ["PROFILE", "NvidiaProfile"]
