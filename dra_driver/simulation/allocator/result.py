"""Render a search result as ``status.allocation`` in the resource.k8s.io/v1 Obj shape.

Follows kube-scheduler: one result per device (``<request>/<subrequest>`` for a subrequest) with
``shareID`` and every capacity in ``consumedCapacity`` for shared devices; class configs first
(``FromClass``, each class once, listing the requests that used it), then claim configs
(``FromClaim``) that apply to an allocated request, with their ``requests`` copied as the claim lists
them (an empty list meaning all); a class config whose request list covers every request drops the
list ("empty means all"). A node-local device pins the claim to the node with a
``metadata.name`` field selector; devices reachable through a slice node selector carry that selector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.allocator.model import DeviceClass, Node
from dra_driver.simulation.allocator.search import ClaimResult, DeviceResult

__all__ = ["allocation_json"]


def allocation_json(result: ClaimResult, classes: Mapping[str, DeviceClass], node: Node) -> Obj:
    """The ``status.allocation`` object for one allocated claim."""
    devices: Obj = {"results": [_device_json(d) for d in result.devices]}
    config = _class_configs(result, classes)
    for entry in config:
        if len(entry.get("requests", ())) == len(result.claim.requests):
            entry.pop("requests")
    config += _claim_configs(result)
    if config:
        devices["config"] = config
    allocation: Obj = {"devices": devices}
    selector = _node_selector(result, node)
    if selector is not None:
        allocation["nodeSelector"] = selector
    return allocation


def _device_json(item: DeviceResult) -> Obj:
    located = item.pick.located
    out: Obj = {
        "request": item.request.result_name,
        "driver": located.id.driver,
        "pool": located.id.pool,
        "device": located.id.device,
    }
    if item.request.admin_access:
        out["adminAccess"] = True
    if item.request.raw_tolerations:
        out["tolerations"] = [dict(t) for t in item.request.raw_tolerations]
    if item.share_id:
        out["shareID"] = item.share_id
        out["consumedCapacity"] = {name: str(amount) for name, amount in item.pick.consumed.items()}
    return out


def _class_configs(result: ClaimResult, classes: Mapping[str, DeviceClass]) -> list[Obj]:
    out: list[Obj] = []
    entries_of_class: dict[str, list[Obj]] = {}
    for request in result.chosen:
        device_class = classes.get(request.device_class)
        if device_class is None:
            continue
        if request.device_class in entries_of_class:
            for entry in entries_of_class[request.device_class]:
                entry["requests"].append(request.result_name)
            continue
        entries = [
            {"source": "FromClass", "requests": [request.result_name], **_without_requests(cfg)}
            for cfg in device_class.config
        ]
        entries_of_class[request.device_class] = entries
        out.extend(entries)
    return out


def _claim_configs(result: ClaimResult) -> list[Obj]:
    allocated = {r.parent or r.name for r in result.chosen} | {r.result_name for r in result.chosen}
    out: list[Obj] = []
    for cfg in result.claim.config:
        if cfg.requests and not allocated.intersection(cfg.requests):
            continue
        entry: Obj = {"source": "FromClaim", **_without_requests(cfg.body)}
        if cfg.requests:
            entry["requests"] = list(cfg.requests)
        out.append(entry)
    return out


def _without_requests(body: Mapping[str, Any]) -> Obj:
    return {key: value for key, value in body.items() if key not in {"requests", "source"}}


def _node_selector(result: ClaimResult, node: Node) -> Obj | None:
    expressions: list[Obj] = []
    fields: list[Obj] = []
    for item in result.devices:
        located = item.pick.located
        selection = located.device.node if located.slice.per_device_node_selection else located.slice.node
        if selection is None:
            continue
        if selection.node_name:
            return _pinned_to(node.name)
        terms = (selection.node_selector or {}).get("nodeSelectorTerms") or []
        if len(terms) == 1:
            _merge(terms[0].get("matchExpressions") or [], expressions)
            _merge(terms[0].get("matchFields") or [], fields)
        elif len(terms) > 1:
            return _pinned_to(node.name)  # several terms cannot be intersected into one; pin instead
    if not expressions and not fields:
        return None
    term: Obj = {}
    if expressions:
        term["matchExpressions"] = expressions
    if fields:
        term["matchFields"] = fields
    return {"nodeSelectorTerms": [term]}


def _pinned_to(node_name: str) -> Obj:
    return {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
        ]
    }


def _merge(requirements: list[Any], into: list[Obj]) -> None:
    for requirement in requirements:
        if dict(requirement) not in into:
            into.append(dict(requirement))
