"""Facts about accelerator models that the vendor libraries do not always report.

NVML's ``nvmlDeviceGetNumGpuCores`` counts CUDA cores, not streaming multiprocessors, and
``nvmlDeviceGetAttributes`` (which does give the SM count) answers NOT_SUPPORTED on some drivers and
products, so the NVIDIA backend falls back to this table. DCMI reports the AI Core count in its chip
information on current drivers; the table covers drivers that leave it at zero. Model names are the ones
published in the ``model`` attribute (DeviceClass selectors and CEL expressions match on them).
"""

from __future__ import annotations

import re

# Ascend chip name (as DCMI's chip_name / npu-smi's Name column gives it) -> AI Core count.
ASCEND_AICORES: dict[str, int] = {
    "910B1": 24,
    "910B2": 24,
    "910B2C": 24,
    "910B3": 20,
    "910B4": 20,
    "910": 32,
    "310P3": 8,
    "310P1": 10,
    "310": 2,
}

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


def ascend_model(chip_name: str) -> str:
    """``910B3`` -> ``Ascend910B3`` (names that already start with Ascend are kept)."""
    name = chip_name.strip()
    return name if name.lower().startswith("ascend") else f"Ascend{name}"


def ascend_aicores(chip_name: str) -> int:
    """AI Cores of a chip by name, 0 when the model is not known."""
    name = chip_name.strip()
    if name.lower().startswith("ascend"):
        name = name[len("ascend") :]
    return ASCEND_AICORES.get(name.upper(), 0)


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
