"""Inventory files shipped with the package (``default.yaml``: the demo node's devices)."""
