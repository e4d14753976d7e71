"""Pure ResourceSlice building: from one node's devices to the desired slices of its pool.

Nothing in this package performs I/O; ``controller.publisher`` does the API calls.
"""

from controller.slices.build import SliceBuildError, build_slices, mode_output, slice_name

__all__ = [
    "SliceBuildError",
    "build_slices",
    "mode_output",
    "slice_name",
]
