"""Telling a user which size a partitioned claim got when the claim itself named none.

An API server without ``DRAConsumableCapacity`` (Kubernetes 1.34 and 1.35 by default) drops
``capacity.requests`` from claims as they are written, and ``auto`` then offers partitions: a claim
written for consumable mode ("16Gi and 25 %") arrives with no size at all and the scheduler gives it
the first partition that is free, possibly an eighth of the device. Nothing else tells the user, so the
plugin posts an Event on the claim naming what was given and how to ask for a size. A request that
selects on the partition's capacity or its ``partition`` attribute chose its size and gets no Event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dra_driver.core.quantity import format_int
from kubeletplugin.limits import Catalog

UNSIZED_REASON = "PartitionWithoutSize"
_SIZE_WORDS = ("capacity", "partition")


def _at(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a step is missing or not an object (claims are the API
    server's JSON; a malformed one gets no notice, never an exception)."""
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _request(claim: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The request (or subrequest, ``request/sub``) that an allocation result names; empty if none."""
    requests = _at(claim, "spec", "devices", "requests")
    requests = requests if isinstance(requests, list) else []
    top, _, sub = name.partition("/")
    request = next((r for r in requests if isinstance(r, Mapping) and r.get("name") == top), {})
    if not sub:
        exactly = request.get("exactly")
        return exactly if isinstance(exactly, Mapping) else {}
    alternatives = request.get("firstAvailable")
    alternatives = alternatives if isinstance(alternatives, list) else []
    return next((a for a in alternatives if isinstance(a, Mapping) and a.get("name") == sub), {})


def _names_a_size(request: Mapping[str, Any]) -> bool:
    selectors = request.get("selectors")
    expressions = [_at(s, "cel", "expression") for s in selectors] if isinstance(selectors, list) else []
    return any(word in str(expression) for expression in expressions for word in _SIZE_WORDS)


def unsized_partitions(claim: Mapping[str, Any], catalog: Catalog, driver: str, pool: str) -> list[str]:
    """One message per partition this node gave to a request that named no size; pure."""
    results = _at(claim, "status", "allocation", "devices", "results")
    messages = []
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, Mapping) or (result.get("driver"), result.get("pool")) != (driver, pool):
            continue
        offer = catalog.get(str(result.get("device", "")))
        name = str(result.get("request", ""))
        if offer is None or not offer.partition or _names_a_size(_request(claim, name)):
            continue
        messages.append(
            f"request {name}: given partition {offer.name} ({format_int(offer.memory_bytes)}, "
            f"{offer.core_percent} % of the device's cores) because the request names no size; API "
            "servers without DRAConsumableCapacity drop capacity.requests, so select a size with a CEL "
            'selector such as device.capacity["xpushare.io"].memory.compareTo(quantity("16Gi")) >= 0 '
            "(docs/configuration.md)"
        )
    return messages
