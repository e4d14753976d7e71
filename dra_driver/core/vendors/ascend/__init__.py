"""Huawei Ascend NPUs: the profile (``profile``) and discovery (``discovery``) through DCMI
(``dcmi``, the only module that declares its C API) or the ``npu-smi`` tool (``npusmi``).

Importing this package loads the profile only; cffi and DCMI are loaded when the backend is opened.
"""

from dra_driver.core.vendors.ascend.profile import PROFILE, AscendProfile

__all__ = ["PROFILE", "AscendProfile"]
