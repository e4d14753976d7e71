"""Ascend's model table: chip names to published models and AI Core counts."""

from __future__ import annotations

import pytest

from dra_driver.core.vendors.ascend import catalog


@pytest.mark.parametrize(
    ("chip", "model", "cores"),
    [
        ("910B3", "Ascend910B3", 20),
        ("Ascend910B1", "Ascend910B1", 24),
        ("310P3", "Ascend310P3", 8),
        ("999X", "Ascend999X", 0),
    ],
)
def test_ascend_models_and_aicores(chip: str, model: str, cores: int) -> None:
    assert (catalog.ascend_model(chip), catalog.ascend_aicores(chip)) == (model, cores)
