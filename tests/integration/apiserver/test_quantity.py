"""Quantities come back in kube-apiserver's canonical form (the publisher compares what it wrote)."""

from __future__ import annotations

import pytest

from dra_driver.sim.quantity import QuantityError, canonical


@pytest.mark.parametrize(("given", "stored"), [
    ("64Gi", "64Gi"), ("65536Mi", "64Gi"), ("1536Mi", "1536Mi"), ("1023Mi", "1023Mi"), ("1Ki", "1Ki"),
    ("512", "512"), ("1024", "1024"), ("2000", "2k"), ("1500", "1500"), ("1.5", "1500m"), ("0.1m", "1m"),
    ("500m", "500m"), ("3k", "3k"), ("1e3", "1e3"), ("12e2", "1200"), ("-2Gi", "-2Gi"), ("0", "0"),
    ("0Gi", "0"), (100, "100"), (1.5, "1500m"), ("+5", "5"), ("1.5Gi", "1536Mi"), ("0.5Ki", "512"),
])
def test_canonical_form(given: object, stored: str) -> None:
    assert canonical(given) == stored


@pytest.mark.parametrize("bad", ["lots", "1.2.3", "5Xi", "", " ", True, None, {"value": 1}, "1e", "Gi"])
def test_malformed_quantities_are_rejected(bad: object) -> None:
    with pytest.raises(QuantityError, match="quantities must match"):
        canonical(bad)
