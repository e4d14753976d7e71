"""What the DRA selector environment of kube-apiserver v1.36 declares: the ``device`` variable and every
function, with the overloads the type checker resolves against.

The environment is Kubernetes' base CEL environment (cel-go's standard library with cross-type numeric
comparisons, optional types, the strings (v2), sets, lists (v3) and two-variable comprehension extensions,
and Kubernetes' quantity, semver, URL, regex, list, IP, CIDR, format and authorization libraries) plus
``device``. ``device.allowMultipleAllocations`` exists only with the DRAConsumableCapacity gate on. Which
names exist, and the overloads below, were checked against a real v1.36.3 API server (a name it does not
know is "undeclared"; one it knows with other argument types has "no matching overload").

The authorization library's functions (``path``, ``check``, ``allowed``, ...) act on an ``authorizer``
variable this environment does not have; their overloads are not modelled: called on a value of a known
type they have no matching overload, on a dyn value they are let through (``MEMBER_ONLY``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dra_driver.simulation.celcompile.types import (
    ANY,
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    list_of,
    map_of,
    opaque,
    optional_of,
    param,
    struct,
    type_of,
    type_params,
)

QUANTITY = struct("kubernetes.Quantity")
SEMVER = struct("kubernetes.Semver")
URL = struct("kubernetes.URL")
NAMED_FORMAT = struct("kubernetes.NamedFormat")
IP, CIDR = opaque("net.IP"), opaque("net.CIDR")
DEVICE = struct("kubernetes.DRADevice")
A, B = param("A"), param("B")

ATTRIBUTES = map_of(STRING, map_of(STRING, ANY))
CAPACITY = map_of(STRING, map_of(STRING, QUANTITY))


def device_fields(consumable_capacity: bool) -> dict[str, CelType]:
    """The fields of ``device``: allowMultipleAllocations only with DRAConsumableCapacity on."""
    fields = {"driver": STRING, "attributes": ATTRIBUTES, "capacity": CAPACITY}
    if consumable_capacity:
        fields["allowMultipleAllocations"] = BOOL
    return fields


# Identifiers besides ``device``: the standard type names (``int``, ``string``, ...) denote types.
TYPE_NAMES: dict[str, CelType] = {
    "bool": type_of(BOOL),
    "bytes": type_of(BYTES),
    "double": type_of(DOUBLE),
    "int": type_of(INT),
    "uint": type_of(UINT),
    "string": type_of(STRING),
    "null_type": type_of(CelType("null")),
    "list": type_of(list_of(A)),
    "map": type_of(map_of(A, B)),
    "type": type_of(CelType("type")),
    "google.protobuf.Duration": type_of(DURATION),
    "google.protobuf.Timestamp": type_of(TIMESTAMP),
}


@dataclass(frozen=True)
class Overload:
    """One signature: ``args`` include the receiver first when ``member``."""

    id: str
    args: tuple[CelType, ...]
    result: CelType
    member: bool = False
    params: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        for t in (*self.args, self.result):
            names |= type_params(t)
        object.__setattr__(self, "params", frozenset(names))


def _g(id_: str, args: list[CelType], result: CelType) -> Overload:
    return Overload(id_, tuple(args), result)


def _m(id_: str, args: list[CelType], result: CelType) -> Overload:
    return Overload(id_, tuple(args), result, member=True)


_NUMBERS = {"int64": INT, "uint64": UINT, "double": DOUBLE}
_TYPES = {
    **_NUMBERS,
    "bool": BOOL,
    "string": STRING,
    "bytes": BYTES,
    "timestamp": TIMESTAMP,
    "duration": DURATION,
}
# Overloads are listed in cel-go's order: the first that matches binds the type parameters (of ``[]``,
# say), so the order decides the result type of ``dyn / []`` (double, cel-go's first).
_ORDER = (
    "bool",
    "int64",
    "int64_double",
    "int64_uint64",
    "uint64",
    "uint64_double",
    "uint64_int64",
    "double",
    "double_int64",
    "double_uint64",
    "string",
    "bytes",
    "timestamp",
    "duration",
)


def _comparisons(op: str, prefix: str) -> dict[str, list[Overload]]:
    overloads = []
    for suffix in _ORDER:
        left, _, right = suffix.partition("_")
        overloads.append(_g(f"{prefix}_{suffix}", [_TYPES[left], _TYPES[right or left]], BOOL))
    return {op: overloads}


def _arithmetic() -> dict[str, list[Overload]]:
    def same(prefix: str, kind: str) -> Overload:
        return _g(f"{prefix}_{kind}", [_TYPES[kind], _TYPES[kind]], _TYPES[kind])

    return {
        "_+_": [
            _g("add_bytes", [BYTES, BYTES], BYTES),
            same("add", "double"),
            _g("add_duration_duration", [DURATION, DURATION], DURATION),
            _g("add_duration_timestamp", [DURATION, TIMESTAMP], TIMESTAMP),
            _g("add_timestamp_duration", [TIMESTAMP, DURATION], TIMESTAMP),
            same("add", "int64"),
            _g("add_list", [list_of(A), list_of(A)], list_of(A)),
            _g("add_string", [STRING, STRING], STRING),
            same("add", "uint64"),
        ],
        "_-_": [
            same("subtract", "double"),
            _g("subtract_duration_duration", [DURATION, DURATION], DURATION),
            same("subtract", "int64"),
            _g("subtract_timestamp_duration", [TIMESTAMP, DURATION], TIMESTAMP),
            _g("subtract_timestamp_timestamp", [TIMESTAMP, TIMESTAMP], DURATION),
            same("subtract", "uint64"),
        ],
        "_*_": [same("multiply", k) for k in ("double", "int64", "uint64")],
        "_/_": [same("divide", k) for k in ("double", "int64", "uint64")],
        "_%_": [same("modulo", k) for k in ("int64", "uint64")],
        "-_": [_g("negate_double", [DOUBLE], DOUBLE), _g("negate_int64", [INT], INT)],
    }


def _conversions() -> dict[str, list[Overload]]:
    def conv(
        name: str, target: CelType, sources: tuple[str, ...], extra: dict[str, CelType] | None = None
    ) -> list[Overload]:
        found = {**{src: _TYPES[src] for src in sources}, **(extra or {})}
        return [_g(f"{src}_to_{name}", [t], target) for src, t in found.items()]

    return {
        "int": conv("int64", INT, ("int64", "double", "duration", "string", "timestamp", "uint64")),
        "uint": conv("uint64", UINT, ("uint64", "double", "int64", "string")),
        "double": conv("double", DOUBLE, ("double", "int64", "string", "uint64")),
        "string": conv(
            "string",
            STRING,
            ("string", "bool", "bytes", "double", "duration", "int64", "timestamp", "uint64"),
            {"ip": IP, "cidr": CIDR},
        ),
        "bytes": conv("bytes", BYTES, ("bytes", "string")),
        "bool": conv("bool", BOOL, ("bool", "string")),
        "duration": conv("duration", DURATION, ("duration", "string")),
        "timestamp": conv("timestamp", TIMESTAMP, ("timestamp", "int64", "string")),
        "dyn": [_g("to_dyn", [A], DYN)],
        "type": [_g("type", [A], type_of(A))],
    }


def _core() -> dict[str, list[Overload]]:
    sized = {"bytes": BYTES, "list": list_of(A), "map": map_of(A, B), "string": STRING}
    return {
        "_?_:_": [_g("conditional", [BOOL, A, A], A)],
        "_&&_": [_g("logical_and", [BOOL, BOOL], BOOL)],
        "_||_": [_g("logical_or", [BOOL, BOOL], BOOL)],
        "!_": [_g("logical_not", [BOOL], BOOL)],
        "@not_strictly_false": [_g("not_strictly_false", [BOOL], BOOL)],
        "_==_": [_g("equals", [A, A], BOOL)],
        "_!=_": [_g("not_equals", [A, A], BOOL)],
        "_[_]": [
            _g("index_list", [list_of(A), INT], A),
            _g("index_map", [map_of(A, B), A], B),
            _g("optional_list_index_int", [optional_of(list_of(A)), INT], optional_of(A)),
            _g("optional_map_index_value", [optional_of(map_of(A, B)), A], optional_of(B)),
        ],
        "@in": [_g("in_list", [A, list_of(A)], BOOL), _g("in_map", [A, map_of(A, B)], BOOL)],
        "size": [o for k, t in sized.items() for o in (_g(f"size_{k}", [t], INT), _m(f"{k}_size", [t], INT))],
        "contains": [_m("contains_string", [STRING, STRING], BOOL)],
        "startsWith": [_m("starts_with_string", [STRING, STRING], BOOL)],
        "endsWith": [_m("ends_with_string", [STRING, STRING], BOOL)],
        "matches": [_g("matches", [STRING, STRING], BOOL), _m("matches_string", [STRING, STRING], BOOL)],
    }


def _time() -> dict[str, list[Overload]]:
    dated = ("getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek")
    timed = ("getHours", "getMinutes", "getSeconds", "getMilliseconds")
    found: dict[str, list[Overload]] = {}
    for name in dated + timed:
        found[name] = [
            _m(f"timestamp_{name}", [TIMESTAMP], INT),
            _m(f"timestamp_{name}_with_tz", [TIMESTAMP, STRING], INT),
        ]
        if name in timed:
            found[name].append(_m(f"duration_{name}", [DURATION], INT))
    return found


def _strings() -> dict[str, list[Overload]]:
    return {
        "charAt": [_m("string_char_at_int", [STRING, INT], STRING)],
        "indexOf": [
            _m("string_index_of_string", [STRING, STRING], INT),
            _m("string_index_of_string_int", [STRING, STRING, INT], INT),
            _m("list_a_index_of_int", [list_of(A), A], INT),
        ],
        "lastIndexOf": [
            _m("string_last_index_of_string", [STRING, STRING], INT),
            _m("string_last_index_of_string_int", [STRING, STRING, INT], INT),
            _m("list_a_last_index_of_int", [list_of(A), A], INT),
        ],
        "lowerAscii": [_m("string_lower_ascii", [STRING], STRING)],
        "upperAscii": [_m("string_upper_ascii", [STRING], STRING)],
        "trim": [_m("string_trim", [STRING], STRING)],
        "replace": [
            _m("string_replace_string_string", [STRING, STRING, STRING], STRING),
            _m("string_replace_string_string_int", [STRING, STRING, STRING, INT], STRING),
        ],
        "split": [
            _m("string_split_string", [STRING, STRING], list_of(STRING)),
            _m("string_split_string_int", [STRING, STRING, INT], list_of(STRING)),
        ],
        "substring": [
            _m("string_substring_int", [STRING, INT], STRING),
            _m("string_substring_int_int", [STRING, INT, INT], STRING),
        ],
        "join": [
            _m("list_join", [list_of(STRING)], STRING),
            _m("list_join_string", [list_of(STRING), STRING], STRING),
        ],
        "format": [_m("string_format", [STRING, list_of(DYN)], STRING)],
        "strings.quote": [_g("strings_quote", [STRING], STRING)],
        "find": [_m("find", [STRING, STRING], STRING)],
        "findAll": [
            _m("find_all", [STRING, STRING], list_of(STRING)),
            _m("find_all_n", [STRING, STRING, INT], list_of(STRING)),
        ],
    }


def _lists() -> dict[str, list[Overload]]:
    comparable = {
        "int": INT,
        "uint": UINT,
        "double": DOUBLE,
        "bool": BOOL,
        "duration": DURATION,
        "timestamp": TIMESTAMP,
        "string": STRING,
        "bytes": BYTES,
    }
    summable = {k: comparable[k] for k in ("int", "uint", "double", "duration")}
    return {
        "isSorted": [_m(f"list_{k}_is_sorted_bool", [list_of(t)], BOOL) for k, t in comparable.items()],
        "sum": [_m(f"list_{k}_sum_{k}", [list_of(t)], t) for k, t in summable.items()],
        "max": [_m(f"list_{k}_max_{k}", [list_of(t)], t) for k, t in comparable.items()],
        "min": [_m(f"list_{k}_min_{k}", [list_of(t)], t) for k, t in comparable.items()],
        "sets.contains": [_g("list_sets_contains_list", [list_of(A), list_of(A)], BOOL)],
        "sets.equivalent": [_g("list_sets_equivalent_list", [list_of(A), list_of(A)], BOOL)],
        "sets.intersects": [_g("list_sets_intersects_list", [list_of(A), list_of(A)], BOOL)],
        "lists.range": [_g("lists_range", [INT], list_of(INT))],
        "slice": [_m("list_slice", [list_of(A), INT, INT], list_of(A))],
        "flatten": [
            _m("list_flatten", [list_of(list_of(A))], list_of(A)),
            _m("list_flatten_int", [list_of(DYN), INT], list_of(DYN)),
        ],
        "sort": [_m(f"list_{k}_sort", [list_of(t)], list_of(t)) for k, t in comparable.items()],
        "@sortByAssociatedKeys": [
            _m(f"list_{k}_sortByAssociatedKeys", [list_of(A), list_of(t)], list_of(A))
            for k, t in comparable.items()
        ],
        "distinct": [_m("list_distinct", [list_of(A)], list_of(A))],
        "reverse": [_m("list_reverse", [list_of(A)], list_of(A))],
        "first": [_m("list_first", [list_of(A)], optional_of(A))],
        "last": [_m("list_last", [list_of(A)], optional_of(A))],
        "cel.@mapInsert": [
            _g("@mapInsert_map_key_value", [map_of(A, B), A, B], map_of(A, B)),
            _g("@mapInsert_map_map", [map_of(A, B), map_of(A, B)], map_of(A, B)),
        ],
    }


def _optionals() -> dict[str, list[Overload]]:
    opt = optional_of(A)
    return {
        "optional.of": [_g("optional_of", [A], opt)],
        "optional.ofNonZeroValue": [_g("optional_ofNonZeroValue", [A], opt)],
        "optional.none": [_g("optional_none", [], opt)],
        "optional.unwrap": [_g("optional_unwrap", [list_of(opt)], list_of(A))],
        "unwrapOpt": [_m("optional_unwrapOpt", [list_of(opt)], list_of(A))],
        "hasValue": [_m("optional_hasValue", [opt], BOOL)],
        "value": [_m("optional_value", [opt], A)],
        "or": [_m("optional_or_optional", [opt, opt], opt)],
        "orValue": [_m("optional_orValue_value", [opt, A], A)],
    }


def _kubernetes() -> dict[str, list[Overload]]:
    formats = (
        "dns1123Label",
        "dns1123Subdomain",
        "dns1035Label",
        "qualifiedName",
        "dns1123LabelPrefix",
        "dns1123SubdomainPrefix",
        "dns1035LabelPrefix",
        "labelValue",
        "uri",
        "uuid",
        "byte",
        "date",
        "datetime",
    )
    compared = {"quantity": QUANTITY, "semver": SEMVER}
    found: dict[str, list[Overload]] = {
        "quantity": [_g("string_to_quantity", [STRING], QUANTITY)],
        "isQuantity": [_g("is_quantity_string", [STRING], BOOL)],
        "sign": [_g("quantity_sign", [QUANTITY], INT)],
        "asApproximateFloat": [_m("quantity_get_float", [QUANTITY], DOUBLE)],
        "asInteger": [_m("quantity_get_int", [QUANTITY], INT)],
        "isInteger": [_m("quantity_is_integer", [QUANTITY], BOOL)],
        "add": [
            _m("quantity_add", [QUANTITY, QUANTITY], QUANTITY),
            _m("quantity_add_int", [QUANTITY, INT], QUANTITY),
        ],
        "sub": [
            _m("quantity_sub", [QUANTITY, QUANTITY], QUANTITY),
            _m("quantity_sub_int", [QUANTITY, INT], QUANTITY),
        ],
        "semver": [
            _g("string_to_semver", [STRING], SEMVER),
            _g("string_bool_to_semver", [STRING, BOOL], SEMVER),
        ],
        "isSemver": [
            _g("is_semver_string", [STRING], BOOL),
            _g("is_semver_string_bool", [STRING, BOOL], BOOL),
        ],
        "major": [_m("semver_major", [SEMVER], INT)],
        "minor": [_m("semver_minor", [SEMVER], INT)],
        "patch": [_m("semver_patch", [SEMVER], INT)],
        "isGreaterThan": [_m(f"{k}_is_greater_than", [t, t], BOOL) for k, t in compared.items()],
        "isLessThan": [_m(f"{k}_is_less_than", [t, t], BOOL) for k, t in compared.items()],
        "compareTo": [_m(f"{k}_compare_to", [t, t], INT) for k, t in compared.items()],
        "url": [_g("string_to_url", [STRING], URL)],
        "isURL": [_g("is_url_string", [STRING], BOOL)],
        "getQuery": [_m("url_get_query", [URL], map_of(STRING, list_of(STRING)))],
        "ip": [_g("string_to_ip", [STRING], IP), _m("cidr_ip", [CIDR], IP)],
        "isIP": [_g("is_ip", [STRING], BOOL)],
        "ip.isCanonical": [_g("ip_is_canonical", [STRING], BOOL)],
        "family": [_m("ip_family", [IP], INT)],
        "cidr": [_g("string_to_cidr", [STRING], CIDR)],
        "isCIDR": [_g("is_cidr", [STRING], BOOL)],
        "containsIP": [
            _m("cidr_contains_ip_ip", [CIDR, IP], BOOL),
            _m("cidr_contains_ip_string", [CIDR, STRING], BOOL),
        ],
        "containsCIDR": [
            _m("cidr_contains_cidr", [CIDR, CIDR], BOOL),
            _m("cidr_contains_cidr_string", [CIDR, STRING], BOOL),
        ],
        "masked": [_m("cidr_masked", [CIDR], CIDR)],
        "prefixLength": [_m("cidr_prefix_length", [CIDR], INT)],
        "format.named": [_g("format_named", [STRING], optional_of(NAMED_FORMAT))],
        "validate": [_m("format_validate", [NAMED_FORMAT, STRING], optional_of(list_of(STRING)))],
    }
    for getter in ("getScheme", "getHost", "getHostname", "getPort", "getEscapedPath"):
        found[getter] = [_m(f"url_{getter}", [URL], STRING)]
    ip_tests = (
        "isUnspecified",
        "isLoopback",
        "isLinkLocalMulticast",
        "isLinkLocalUnicast",
        "isGlobalUnicast",
    )
    for test in ip_tests:
        found[test] = [_m(f"ip_{test}", [IP], BOOL)]
    for name in formats:
        found[f"format.{name}"] = [_g(f"format_{name}", [], NAMED_FORMAT)]
    return found


def _merge(*tables: dict[str, list[Overload]]) -> dict[str, tuple[Overload, ...]]:
    merged: dict[str, list[Overload]] = {}
    for table in tables:
        for name, overloads in table.items():
            merged.setdefault(name, []).extend(overloads)
    return {name: tuple(overloads) for name, overloads in merged.items()}


FUNCTIONS: dict[str, tuple[Overload, ...]] = _merge(
    _comparisons("_<_", "less"),
    _comparisons("_<=_", "less_equals"),
    _comparisons("_>_", "greater"),
    _comparisons("_>=_", "greater_equals"),
    _arithmetic(),
    _conversions(),
    _core(),
    _time(),
    _strings(),
    _lists(),
    _optionals(),
    _kubernetes(),
)

# Member functions of the authorization library, whose receiver types this environment cannot produce.
MEMBER_ONLY = frozenset(
    {
        "path",
        "group",
        "serviceAccount",
        "resource",
        "subresource",
        "namespace",
        "name",
        "check",
        "allowed",
        "reason",
        "errored",
        "error",
        "fieldSelector",
        "labelSelector",
    }
)
