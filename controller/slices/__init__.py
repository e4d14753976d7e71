"""Pure ResourceSlice building: from one node's devices to the desired slices of its pool.

Nothing in this package performs I/O; ``controller.publisher`` does the API calls.
"""

from controller.slices.build import SliceBuildError, build_slices, mode_output, slice_name
from controller.slices.quantity import format_quantity, quantity_value

__all__ = [
    "SliceBuildError",
    "build_slices",
    "format_quantity",
    "mode_output",
    "quantity_value",
    "slice_name",
]
