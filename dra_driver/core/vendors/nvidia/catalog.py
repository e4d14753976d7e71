"""Facts about NVIDIA GPU models that NVML does not always report.

NVML's ``nvmlDeviceGetNumGpuCores`` counts CUDA cores, not streaming multiprocessors, and
``nvmlDeviceGetAttributes`` (which does give the SM count) answers NOT_SUPPORTED on some drivers and
products, so the NVIDIA backend falls back to this table. Model names are the ones published in the
``model`` attribute (DeviceClass selectors and CEL expressions match on them).
"""

from __future__ import annotations

import re

# NVML product name -> (published model, SM count).
NVIDIA_MODELS: dict[str, tuple[str, int]] = {
    "NVIDIA H100 80GB HBM3": ("H100-SXM5-80GB", 132),
    "NVIDIA H100 PCIe": ("H100-PCIE-80GB", 114),
    "NVIDIA H100 NVL": ("H100-NVL-94GB", 132),
    "NVIDIA H200": ("H200-SXM5-141GB", 132),
    "NVIDIA H20": ("H20-96GB", 78),
    "NVIDIA A100-SXM4-80GB": ("A100-SXM4-80GB", 108),
    "NVIDIA A100-SXM4-40GB": ("A100-SXM4-40GB", 108),
    "NVIDIA A100-PCIE-40GB": ("A100-PCIE-40GB", 108),
    "NVIDIA A100 80GB PCIe": ("A100-PCIE-80GB", 108),
    "NVIDIA A30": ("A30-24GB", 56),
    "NVIDIA A10": ("A10-24GB", 72),
    "NVIDIA L40S": ("L40S-48GB", 142),
    "NVIDIA L40": ("L40-48GB", 142),
    "NVIDIA L4": ("L4-24GB", 58),
    "Tesla V100-SXM2-32GB": ("V100-SXM2-32GB", 80),
    "Tesla T4": ("T4-16GB", 40),
}

_NOT_LABEL = re.compile(r"[^A-Za-z0-9]+")


def nvidia_model(product_name: str) -> str:
    """The published model for an NVML product name; unknown names are turned into a dashed form."""
    known = NVIDIA_MODELS.get(product_name.strip())
    if known is not None:
        return known[0]
    bare = product_name.strip().removeprefix("NVIDIA ").removeprefix("Tesla ")
    return _NOT_LABEL.sub("-", bare).strip("-") or "unknown"


def nvidia_sm_count(product_name: str) -> int:
    """SM count from the table, 0 when the product is not known."""
    known = NVIDIA_MODELS.get(product_name.strip())
    return known[1] if known is not None else 0
