"""NVIDIA's model table: NVML product names to published models and SM counts."""

from __future__ import annotations

from dra_driver.core.vendors.nvidia import catalog


def test_nvidia_models_and_sm_counts() -> None:
    assert (
        catalog.nvidia_model("NVIDIA H100 80GB HBM3"),
        catalog.nvidia_sm_count("NVIDIA H100 80GB HBM3"),
    ) == (
        "H100-SXM5-80GB",
        132,
    )
    assert (catalog.nvidia_model("NVIDIA RTX 6000 Ada Generation"), catalog.nvidia_sm_count("x")) == (
        "RTX-6000-Ada-Generation",
        0,
    )
