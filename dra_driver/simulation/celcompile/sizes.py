"""The largest sizes of what ``device`` holds, which bound the real server's cost estimate of a selector.

kube-apiserver estimates a selector's worst-case cost from the declared limits of ResourceSlices: at most
32 attributes and capacities per device (so 32 domains of 32 names), domains of at most 63 characters,
names of at most 32, driver names of at most 63, and attribute values of at most 64 (strings and
versions). A path such as ``device.attributes.@values.@values`` (any attribute value) or
``device.attributes.@keys`` (a domain) names what an expression reads; an unknown path has no estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dra_driver.simulation.celcompile.estimates import Estimate

MAX_ATTRIBUTES_AND_CAPACITIES = 32
MAX_DOMAIN, MAX_ID, MAX_DRIVER, MAX_ATTRIBUTE_VALUE = 63, 32, 63, 64


@dataclass(frozen=True, eq=False)
class Decl:
    """A declared shape: its size limit, and its fields (an object) or keys and elements (a map)."""

    max_elements: int = 0
    fields: dict[str, Decl] = field(default_factory=dict)
    key: Decl | None = None
    elem: Decl | None = None


ATTRIBUTE_VALUE = Decl(MAX_ATTRIBUTE_VALUE)
_DOMAIN, _ID = Decl(MAX_DOMAIN), Decl(MAX_ID)


def _by_domain(value: Decl) -> Decl:
    inner = Decl(MAX_ATTRIBUTES_AND_CAPACITIES, key=_ID, elem=value)
    return Decl(MAX_ATTRIBUTES_AND_CAPACITIES, key=_DOMAIN, elem=inner)


DEVICE = Decl(
    fields={
        "driver": Decl(MAX_DRIVER),
        "attributes": _by_domain(ATTRIBUTE_VALUE),
        "capacity": _by_domain(Decl()),
        "allowMultipleAllocations": Decl(),
    }
)


def estimate_size(path: list[str] | None) -> Estimate | None:
    """The size range of what ``path`` names, or None when it is not a path into ``device``."""
    if not path or path[0] != "device":
        return None
    node = DEVICE
    for name in path[1:]:
        if name in ("@items", "@values"):
            step = node.elem
        elif name == "@keys":
            step = node.key
        else:
            # A name in an attribute map is some attribute's value, whatever the name.
            step = node.fields.get(name) or (ATTRIBUTE_VALUE if node.elem is ATTRIBUTE_VALUE else None)
        if step is None:
            return None
        node = step
    return Estimate(0, node.max_elements)
