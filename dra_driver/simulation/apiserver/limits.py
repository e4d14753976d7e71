"""Semantic checks the OpenAPI schemas cannot express: name formats and the DRA size limits.

These mirror kube-apiserver's validation for the rules XPUShare's publisher must respect (at most 128
devices per slice, 64 when a device uses taints or counters; 32 attributes plus capacities per device;
8 counter sets per slice; string and version attributes of at most 64 characters; DNS label device
names; DNS subdomain object names), so a driver bug fails here as it would in a real cluster.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from dra_driver.core.kubetypes import Obj
from dra_driver.core.quantity import QuantityError, stored_value
from dra_driver.simulation.apiserver import celcheck
from dra_driver.simulation.apiserver.registry import ResourceKind
from dra_driver.simulation.apiserver.status import cause

MAX_DEVICES = 128
MAX_DEVICES_WITH_TAINTS_OR_COUNTERS = 64
MAX_ATTRIBUTES_AND_CAPACITIES = 32
MAX_COUNTER_SETS = 8
MAX_ATTRIBUTE_STRING = 64
MAX_REQUESTS = 32

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = re.compile(_LABEL)
DNS_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_C_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             f"validation is '{_LABEL}')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                 "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                 f"for validation is '{_LABEL}(\\.{_LABEL})*')")


def _name_errors(field: str, value: Any, longest: int, pattern: re.Pattern[str], rule: str) -> list[Obj]:
    text = str(value)
    if len(text) > longest:
        return [cause(field, f'Invalid value: "{text}": must be no more than {longest} characters')]
    if not pattern.fullmatch(text):
        return [cause(field, f'Invalid value: "{text}": {rule}')]
    return []


def dns_label_errors(field: str, value: Any) -> list[Obj]:
    return _name_errors(field, value, 63, DNS_LABEL, LABEL_MSG)


def dns_subdomain_errors(field: str, value: Any) -> list[Obj]:
    return _name_errors(field, value, 253, DNS_SUBDOMAIN, SUBDOMAIN_MSG)


def metadata_errors(kind: ResourceKind, meta: Obj) -> list[Obj]:
    """Name format and label syntax, as for every kind."""
    name = meta.get("name", "")
    errors = (dns_label_errors if kind.kind == "Namespace" else dns_subdomain_errors)("metadata.name", name)
    for key, value in (meta.get("labels") or {}).items():
        errors += _label_errors(str(key), value)
    return errors


def _label_errors(key: str, value: Any) -> list[Obj]:
    field = "metadata.labels"
    prefix, _, name = key.rpartition("/")
    errors: list[Obj] = []
    if (prefix and dns_subdomain_errors(field, prefix)) or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        errors.append(cause(field, f'Invalid value: "{key}": name part must consist of alphanumeric '
                                   "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                                   "character (at most 63 characters, optionally prefixed by a DNS "
                                   "subdomain)"))
    if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        errors.append(cause(field, f'Invalid value: "{value}": a valid label must be an empty string or '
                                   "consist of alphanumeric characters, '-', '_' or '.', and must start and "
                                   "end with an alphanumeric character (at most 63 characters)"))
    return errors


# The parts the checks below walk, and the JSON type each must have (``[]``: every element of a list).
# Structural validation (upstream or generated documents) refuses a wrong type before these checks run;
# this keeps a malformed body a 422 instead of a server error should a schema let one through.
_SLICE_SHAPE: tuple[tuple[str, type], ...] = (
    ("spec", dict),
    ("spec.devices", list),
    ("spec.devices[]", dict),
    ("spec.devices[].attributes", dict),
    ("spec.devices[].capacity", dict),
    ("spec.sharedCounters", list),
    ("spec.sharedCounters[]", dict),
    ("spec.pool", dict),
)
_CLAIM_SHAPE: tuple[tuple[str, type], ...] = (
    ("spec", dict),
    ("spec.devices", dict),
    ("spec.devices.requests", list),
)
_TEMPLATE_SHAPE = (("spec", dict), *((f"spec.{path}", kind) for path, kind in _CLAIM_SHAPE))
_TYPE_NAMES: dict[type, str] = {dict: "object", list: "array"}


def _values(obj: Any, path: str) -> list[tuple[str, Any]]:
    """The values present at ``path``, each with its own path (list elements numbered)."""
    found: list[tuple[str, Any]] = [("", obj)]
    for part in path.split("."):
        name, each = part.removesuffix("[]"), part.endswith("[]")
        step: list[tuple[str, Any]] = []
        for where, value in found:
            child = value.get(name) if isinstance(value, dict) else None
            if child is None:
                continue
            here = f"{where}.{name}" if where else name
            if each and isinstance(child, list):
                step += [(f"{here}[{index}]", item) for index, item in enumerate(child)]
            elif not each:
                step.append((here, child))
        found = step
    return found


def shape_errors(obj: Obj, shape: tuple[tuple[str, type], ...]) -> list[Obj]:
    """A cause for every value on ``shape``'s paths that is not of its JSON type."""
    errors: list[Obj] = []
    for path, wanted in shape:
        for where, value in _values(obj, path):
            if not isinstance(value, wanted):
                message = f'Invalid value: "{type(value).__name__}": must be of type {_TYPE_NAMES[wanted]}'
                errors.append(cause(where, message, "FieldValueTypeInvalid"))
    return errors


def dra_errors(kind: ResourceKind, obj: Obj, consumable_capacity: bool = True) -> list[Obj]:
    """``consumable_capacity``: whether DRAConsumableCapacity is on (CEL selectors depend on it)."""
    if kind.kind == "ResourceSlice":
        return shape_errors(obj, _SLICE_SHAPE) or slice_errors(obj.get("spec") or {})
    if kind.kind == "ResourceClaim":
        spec = obj.get("spec") or {}
        return shape_errors(obj, _CLAIM_SHAPE) or (
            claim_spec_errors("spec", spec)
            + celcheck.claim_selector_errors("spec", spec, consumable_capacity))
    if kind.kind == "ResourceClaimTemplate":
        spec = (obj.get("spec") or {}).get("spec") if isinstance(obj.get("spec"), dict) else None
        spec = spec or {}
        return shape_errors(obj, _TEMPLATE_SHAPE) or (
            claim_spec_errors("spec.spec", spec)
            + celcheck.claim_selector_errors("spec.spec", spec, consumable_capacity))
    if kind.kind == "DeviceClass" and isinstance(obj.get("spec"), dict):
        return celcheck.class_selector_errors(obj["spec"], consumable_capacity)
    return []


def slice_errors(spec: Obj) -> list[Obj]:
    devices = spec.get("devices") or []
    errors: list[Obj] = []
    limited = any(d.get("taints") or d.get("consumesCounters") for d in devices if isinstance(d, dict))
    limit = MAX_DEVICES_WITH_TAINTS_OR_COUNTERS if limited else MAX_DEVICES
    if len(devices) > limit:
        errors.append(cause("spec.devices", f"Too many: {len(devices)}: must have at most {limit} items",
                            "FieldValueTooMany"))
    counters = spec.get("sharedCounters") or []
    if len(counters) > MAX_COUNTER_SETS:
        errors.append(cause("spec.sharedCounters",
                            f"Too many: {len(counters)}: must have at most {MAX_COUNTER_SETS} items",
                            "FieldValueTooMany"))
    for index, counter_set in enumerate(counters):
        errors += dns_label_errors(f"spec.sharedCounters[{index}].name", counter_set.get("name", ""))
    if "driver" in spec:
        errors += dns_subdomain_errors("spec.driver", spec["driver"])
    errors += _pool_errors(spec.get("pool") or {})
    if spec.get("nodeName"):
        errors += dns_subdomain_errors("spec.nodeName", spec["nodeName"])
    selectors = [k for k in ("nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection") if spec.get(k)]
    if len(selectors) > 1:
        errors.append(cause("spec", "Invalid value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, "
                                    "`perDeviceNodeSelection` is required, but multiple fields are set"))
    elif devices and not selectors:
        errors.append(cause("spec", "Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, "
                                    "`perDeviceNodeSelection` is required", "FieldValueRequired"))
    for index, device in enumerate(devices):
        errors += device_errors(f"spec.devices[{index}]", device)
    return errors


def _pool_errors(pool: Obj) -> list[Obj]:
    errors: list[Obj] = []
    name = str(pool.get("name", ""))
    if len(name) > 253 or not name or any(dns_subdomain_errors("", part) for part in name.split("/")):
        errors.append(cause("spec.pool.name", f'Invalid value: "{name}": must be one or more DNS subdomains '
                                              "separated by slashes, at most 253 characters"))
    if int(pool.get("resourceSliceCount", 0)) <= 0:
        errors.append(cause("spec.pool.resourceSliceCount", "Invalid value: must be greater than zero"))
    if int(pool.get("generation", 0)) < 0:
        errors.append(cause("spec.pool.generation", "Invalid value: must be greater than or equal to 0"))
    return errors


def device_errors(path: str, device: Obj) -> list[Obj]:
    errors = dns_label_errors(f"{path}.name", device.get("name", ""))
    attributes = device.get("attributes") or {}
    capacity = device.get("capacity") or {}
    total = len(attributes) + len(capacity)
    if total > MAX_ATTRIBUTES_AND_CAPACITIES:
        errors.append(cause(f"{path}.attributes", f"Too many: {total}: must have at most "
                            f"{MAX_ATTRIBUTES_AND_CAPACITIES} attributes and capacities combined",
                            "FieldValueTooMany"))
    for name, attribute in attributes.items():
        errors += _attribute_errors(f"{path}.attributes[{name}]", str(name), attribute)
    for name in capacity:
        errors += _qualified_name_errors(f"{path}.capacity[{name}]", str(name))
    return errors + request_policy_errors(path, device)


def _attribute_errors(path: str, name: str, attribute: Any) -> list[Obj]:
    errors = _qualified_name_errors(path, name)
    if not isinstance(attribute, dict):
        return errors
    set_fields = [k for k in ("int", "bool", "string", "version") if k in attribute]
    if len(set_fields) != 1:
        errors.append(cause(path, "Invalid value: exactly one value must be specified"))
    for key in ("string", "version"):
        text = attribute.get(key)
        if isinstance(text, str) and len(text) > MAX_ATTRIBUTE_STRING:
            errors.append(cause(f"{path}.{key}", f"Too long: may not be more than {MAX_ATTRIBUTE_STRING} "
                                f"bytes", "FieldValueTooLong"))
    return errors


def _qualified_name_errors(path: str, name: str) -> list[Obj]:
    domain, _, ident = name.rpartition("/")
    if (domain and dns_subdomain_errors(path, domain)) or len(ident) > 32 or not _C_IDENT.fullmatch(ident):
        return [cause(path, f'Invalid value: "{name}": must be a C identifier of at most 32 characters, '
                            "optionally prefixed by a DNS subdomain and '/'")]
    return []


def claim_spec_errors(path: str, spec: Obj) -> list[Obj]:
    requests = (spec.get("devices") or {}).get("requests") or []
    errors: list[Obj] = []
    if len(requests) > MAX_REQUESTS:
        errors.append(cause(f"{path}.devices.requests",
                            f"Too many: {len(requests)}: must have at most {MAX_REQUESTS} items",
                            "FieldValueTooMany"))
    for index, request in enumerate(requests):
        if isinstance(request, dict):
            errors += dns_label_errors(f"{path}.devices.requests[{index}].name", request.get("name", ""))
    return errors


MAX_VALID_VALUES = 10


def request_policy_errors(path: str, device: Obj) -> list[Obj]:
    """The consumable-capacity rules of CapacityRequestPolicy, as the upstream field docs state them."""
    errors: list[Obj] = []
    for name, capacity in (device.get("capacity") or {}).items():
        policy = capacity.get("requestPolicy") if isinstance(capacity, dict) else None
        if not isinstance(policy, dict):
            continue
        where = f"{path}.capacity[{name}].requestPolicy"
        if not device.get("allowMultipleAllocations"):
            errors.append(cause(where, "Forbidden: requires allowMultipleAllocations: true",
                                "FieldValueForbidden"))
        try:
            errors += _policy_errors(where, policy, stored_value(capacity.get("value", "0")))
        except QuantityError:
            continue  # already reported by normalization
    return errors


def _policy_errors(where: str, policy: Obj, value: Fraction) -> list[Obj]:
    valid_range, valid_values = policy.get("validRange"), policy.get("validValues")
    if valid_range and valid_values:
        return [cause(where, "Invalid value: exactly one of validRange and validValues may be set")]
    if (valid_range or valid_values) and "default" not in policy:
        return [cause(f"{where}.default", "Required value: needed with validRange or validValues",
                      "FieldValueRequired")]
    default = stored_value(policy["default"]) if "default" in policy else None
    if default is not None and (default < 0 or default > value):
        return [cause(f"{where}.default", "Invalid value: must be between zero and the capacity value")]
    if isinstance(valid_values, list):
        return _valid_values_errors(f"{where}.validValues", valid_values, default, value)
    if isinstance(valid_range, dict):
        return _range_errors(f"{where}.validRange", valid_range, default, value)
    return []


def _valid_values_errors(
    where: str, values: list[Any], default: Fraction | None, value: Fraction
) -> list[Obj]:
    amounts = [stored_value(v) for v in values]
    if len(amounts) > MAX_VALID_VALUES:
        return [cause(where, f"Too many: {len(amounts)}: must have at most {MAX_VALID_VALUES} items",
                      "FieldValueTooMany")]
    if amounts != sorted(set(amounts)):
        return [cause(where, "Invalid value: must be sorted in ascending order without duplicates")]
    if default is not None and default not in amounts:
        return [cause(where, "Invalid value: must include requestPolicy.default")]
    if amounts and amounts[-1] > value:
        return [cause(where, "Invalid value: must not exceed the capacity value")]
    return []


def _range_errors(where: str, valid: Obj, default: Fraction | None, value: Fraction) -> list[Obj]:
    """``where`` is ``...requestPolicy.validRange``; ``default`` belongs to the policy around it."""
    low = stored_value(valid.get("min", "0"))
    high = stored_value(valid["max"]) if "max" in valid else None
    step = stored_value(valid["step"]) if "step" in valid else None
    policy = where.rsplit(".", 1)[0]
    problems: list[tuple[str, str]] = []
    if low < 0 or low > value:
        problems.append((f"{where}.min", "must be between zero and the capacity value"))
    if high is not None and (high > value or high < low):
        problems.append((f"{where}.max", "must be between min and the capacity value"))
    if default is not None and (default < low or (high is not None and default > high)):
        problems.append((f"{policy}.default", "must fall within validRange"))
    if step is not None:
        if step <= 0 or low + step > value:
            problems.append((f"{where}.step", "must be positive, and min + step must not exceed the capacity "
                                              "value"))
        elif (high is not None and high % step) or (default is not None and default % step):
            problems.append((f"{where}.step", "max and requestPolicy.default must be multiples of step"))
    return [cause(field, f"Invalid value: {message}") for field, message in problems]
