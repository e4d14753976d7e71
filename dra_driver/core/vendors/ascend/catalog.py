"""Facts about Ascend chip models that DCMI and npu-smi do not always report.

DCMI reports the AI Core count in its chip information on current drivers; the table covers drivers
that leave it at zero, and npu-smi, which does not show it. Model names are the ones published in the
``model`` attribute (DeviceClass selectors and CEL expressions match on them).
"""

from __future__ import annotations

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
