"""Version ``xpushare.io/v1alpha1`` of XPUShare's configuration: ``SharingConfig`` and its decoders.

Components import from here, never from the submodules, so the layout behind can change freely.
"""

from api.v1alpha1.decode import (
    RawParameters,
    decode_parsed,
    decode_sharing_config,
    merge_sharing_configs,
    parse_json,
)
from api.v1alpha1.opaque import DRIVER_NAME, OpaqueParameters, decode_object_configs, find_opaque_parameters
from api.v1alpha1.sharing import (
    API_VERSION,
    KIND,
    MAX_MEMORY_MIB,
    MAX_PARAMETERS_BYTES,
    ComputePolicy,
    Priority,
    SharingConfig,
    json_schema,
)

__all__ = [
    "API_VERSION",
    "DRIVER_NAME",
    "KIND",
    "MAX_MEMORY_MIB",
    "MAX_PARAMETERS_BYTES",
    "ComputePolicy",
    "OpaqueParameters",
    "Priority",
    "RawParameters",
    "SharingConfig",
    "decode_object_configs",
    "decode_parsed",
    "decode_sharing_config",
    "find_opaque_parameters",
    "json_schema",
    "merge_sharing_configs",
    "parse_json",
]
