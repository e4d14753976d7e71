"""ResourceSlice publishing: the I/O side of ``controller.slices`` (list, diff, write, fall back)."""

from controller.publisher.events import NodeEvents
from controller.publisher.publisher import PublishError, PublishResult, SlicePublisher, list_pools
from dra_driver.core.kube import ApiError, KubeApi

__all__ = [
    "ApiError",
    "KubeApi",
    "NodeEvents",
    "PublishError",
    "PublishResult",
    "SlicePublisher",
    "list_pools",
]
