"""CEL selectors the real server refuses are refused at create and update, with its field and message.

kube-apiserver compiles every ``cel.expression`` of a DeviceClass, ResourceClaim and ResourceClaimTemplate
(requests' ``exactly`` and each ``firstAvailable`` subrequest) and answers 422 with one cause per bad
selector, naming its field (``spec.devices.requests[0].exactly.selectors[1].cel.expression``): syntax
errors, type errors against the DRA CEL environment, results that are not bools, and expressions over the
cost limit. ``dra_driver.simulation.celcompile`` makes those decisions; this module finds the selectors.
With the DRAConsumableCapacity gate off, ``device.allowMultipleAllocations`` is an undefined field, as
on a real server with the gate off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.status import cause
from dra_driver.simulation.celcompile import selector_refusal

__all__ = ["claim_selector_errors", "class_selector_errors"]


def _selector_errors(path: str, selectors: Any, consumable_capacity: bool) -> list[Obj]:
    errors: list[Obj] = []
    for index, selector in enumerate(selectors if isinstance(selectors, list) else ()):
        cel = selector.get("cel") if isinstance(selector, dict) else None
        expression = cel.get("expression") if isinstance(cel, dict) else None
        if not isinstance(expression, str):
            continue  # structural validation answers for a missing or mistyped expression
        refusal = selector_refusal(expression, consumable_capacity)
        if refusal is not None:
            errors.append(cause(f"{path}[{index}].cel.expression", refusal.message, refusal.reason))
    return errors


def _requests(path: str, spec: Obj) -> Iterator[tuple[str, Obj]]:
    requests = (spec.get("devices") or {}).get("requests") if isinstance(spec.get("devices"), dict) else None
    for index, request in enumerate(requests if isinstance(requests, list) else ()):
        if not isinstance(request, dict):
            continue
        where = f"{path}.devices.requests[{index}]"
        if isinstance(request.get("exactly"), dict):
            yield f"{where}.exactly", request["exactly"]
        alternatives = request.get("firstAvailable")
        for sub, alternative in enumerate(alternatives if isinstance(alternatives, list) else ()):
            if isinstance(alternative, dict):
                yield f"{where}.firstAvailable[{sub}]", alternative


def claim_selector_errors(path: str, spec: Obj, consumable_capacity: bool = True) -> list[Obj]:
    """The selectors of a claim spec (at ``path``) the real server refuses."""
    errors: list[Obj] = []
    for where, request in _requests(path, spec):
        errors += _selector_errors(f"{where}.selectors", request.get("selectors"), consumable_capacity)
    return errors


def class_selector_errors(spec: Obj, consumable_capacity: bool = True) -> list[Obj]:
    """The selectors of a DeviceClass spec the real server refuses."""
    return _selector_errors("spec.selectors", spec.get("selectors"), consumable_capacity)
