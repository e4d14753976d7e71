"""The API verbs (create, get, list, update, patch, delete) over the store, as kube-apiserver does them.

Writes go through one admission path (drop disabled-gate fields, prune unknown fields, validate against
the upstream schema and the DRA limits) and land with a compare-and-swap on the resourceVersion read:
a stale version sent by a client is a 409, and an unconditional update or a patch that loses a race is
retried on the fresh object, exactly like the real server's GuaranteedUpdate.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from dra_driver.core.kube import ConflictError
from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver import limits, objects
from dra_driver.simulation.apiserver.patch import APPLY, apply_patch, parse_patch
from dra_driver.simulation.apiserver.registry import KINDS, ResourceKind
from dra_driver.simulation.apiserver.schema import Normalized, SchemaSet, normalize
from dra_driver.simulation.apiserver.status import (
    already_exists,
    bad_request,
    cause,
    conflict,
    invalid,
    not_found,
    stale,
)
from dra_driver.simulation.apiserver.store import Entry, Key, Store
from dra_driver.simulation.gates import CONSUMABLE_CAPACITY, Gates

log = logging.getLogger(__name__)
_RETRIES = 64
NAMESPACES = "namespaces"


@dataclass
class WriteOptions:
    """Per-request write settings from the query string."""

    strict: bool = False
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ListResult:
    entries: list[Entry]
    resource_version: int
    continue_token: str = ""
    remaining: int = 0


class Resources:
    """The verbs of every registered kind over one store."""

    def __init__(self, store: Store, schemas: SchemaSet, gates: Gates) -> None:
        self.store = store
        self.schemas = schemas
        self.gates = gates

    # -- reads -------------------------------------------------------------------------------------
    def get(self, kind: ResourceKind, namespace: str, name: str) -> Entry:
        entry = self.store.get(kind.qualified, (namespace, name))
        if entry is None:
            raise not_found(kind.qualified, name)
        return entry

    def list_objects(self, kind: ResourceKind, namespace: str | None, match: Callable[[Obj], bool] | None,
             limit: int = 0, token: str = "") -> ListResult:
        entries, rv = self.store.snapshot(kind.qualified, namespace)
        if match is not None:
            entries = [e for e in entries if match(e.obj)]
        if token:
            start = _decode_token(token)
            entries = [e for e in entries if _key_of(e) > start]
        if limit <= 0 or len(entries) <= limit:
            return ListResult(entries, rv)
        page = entries[:limit]
        next_token = base64.urlsafe_b64encode(json.dumps(list(_key_of(page[-1]))).encode()).decode()
        return ListResult(page, rv, next_token, len(entries) - limit)

    # -- admission ---------------------------------------------------------------------------------
    def admit(self, kind: ResourceKind, obj: Obj, options: WriteOptions) -> None:
        """Make ``obj`` what a real server would store, or raise the 400/422 it would answer."""
        self.gates.drop_disabled_fields(kind.kind, obj)
        found = Normalized()
        normalize(self.schemas.components(kind), self.schemas.root(kind), obj, found)
        if found.dropped and options.strict:
            unknown = ", ".join(f'unknown field "{d}"' for d in found.dropped)
            raise bad_request(f"strict decoding error: {unknown}")
        options.warnings += [f'unknown field "{d}"' for d in found.dropped]
        # Structural errors first: the semantic checks below may assume the schema's types.
        causes = found.bad_quantities + self.schemas.validate(kind, obj)
        if not causes:
            consumable = self.gates.enabled(CONSUMABLE_CAPACITY)
            causes = limits.metadata_errors(kind, obj["metadata"]) + limits.dra_errors(kind, obj, consumable)
        if causes:
            raise invalid(kind.kind, kind.group, str(obj["metadata"].get("name", "")), causes)

    # -- create ------------------------------------------------------------------------------------
    def create(self, kind: ResourceKind, namespace: str, body: object, options: WriteOptions) -> Entry:
        obj = objects.check_body(kind, body)
        objects.place(kind, obj, namespace)
        name = objects.name_for_create(kind, obj)
        if kind.namespaced and self.store.get(NAMESPACES, ("", namespace)) is None:
            raise not_found(NAMESPACES, namespace)
        objects.init_system_fields(kind, obj)
        self.admit(kind, obj, options)
        if options.dry_run:
            return Entry(obj, b"", 0)
        try:
            entry = self.store.create(kind.qualified, (namespace, name), obj)
        except ConflictError as err:
            raise already_exists(kind.qualified, name) from err
        log.debug("created", extra={"resource": kind.qualified, "namespace": namespace, "name": name})
        return entry

    # -- update and patch --------------------------------------------------------------------------
    def update(self, kind: ResourceKind, namespace: str, name: str, body: object, *, subresource: str,
               options: WriteOptions) -> Entry:
        obj = objects.check_body(kind, body)
        objects.place(kind, obj, namespace)
        sent_name = obj["metadata"].get("name") or name
        if sent_name != name:
            raise bad_request(f"the name of the object ({sent_name}) does not match the name on the URL "
                              f"({name})")
        obj["metadata"]["name"] = name
        precondition = str(obj["metadata"].get("resourceVersion") or "")
        sent_uid = str(obj["metadata"].get("uid") or "")

        def replace(old: Obj) -> Obj:
            if sent_uid and sent_uid != old["metadata"].get("uid"):
                raise conflict(kind.qualified, name, f"Precondition failed: UID in precondition: {sent_uid}, "
                                                     f"UID in object meta: {old['metadata'].get('uid')}")
            return dict(objects.strip_nulls(obj))

        return self.guaranteed_update(kind, (namespace, name), replace, precondition=precondition,
                                      subresource=subresource, options=options)

    def guaranteed_update(self, kind: ResourceKind, key: Key, change: Callable[[Obj], Obj], *,
                          precondition: str, subresource: str, options: WriteOptions) -> Entry:
        """Read, apply ``change``, write with compare-and-swap; retry lost races unless preconditioned."""
        for _ in range(_RETRIES):
            old = self.get(kind, *key)
            if precondition and precondition != str(old.rv):
                raise stale(kind.qualified, key[1])
            new = change(json.loads(old.raw))
            try:
                return self._write(kind, key, old, new, subresource=subresource, options=options)
            except ConflictError as err:
                if precondition:
                    raise stale(kind.qualified, key[1]) from err
        raise conflict(kind.qualified, key[1], "too many concurrent writers; try again")

    def _write(self, kind: ResourceKind, key: Key, old: Entry, new: Obj, *, subresource: str,
               options: WriteOptions) -> Entry:
        new = objects.check_body(kind, new)
        new["metadata"]["name"] = key[1]
        objects.place(kind, new, key[0])
        merged = objects.merge_for_update(kind, old.obj, new, subresource)
        objects.check_immutable(kind, old.obj, merged)
        self.admit(kind, merged, options)
        if objects.same_object(old.obj, merged) or options.dry_run:
            return old if not options.dry_run else Entry(merged, b"", 0)
        if old.obj["metadata"].get("deletionTimestamp") and not merged["metadata"].get("finalizers"):
            entry = self.store.delete(kind.qualified, key, old.rv)
            self.collect(entry)
            return entry
        return self.store.replace(kind.qualified, key, merged, old.rv)

    def patch(self, kind: ResourceKind, namespace: str, name: str, body: bytes, *, content_type: str,
              subresource: str, options: WriteOptions) -> Entry:
        """Apply a patch of any supported flavour; an apply patch for a missing object creates it."""
        parsed = parse_patch(content_type, body)
        missing = self.store.get(kind.qualified, (namespace, name)) is None
        if content_type == APPLY and subresource == "" and missing:
            if not isinstance(parsed, dict):
                raise bad_request("apply patch: the body must be an object")
            parsed.setdefault("metadata", {})["name"] = name
            return self.create(kind, namespace, parsed, options)
        meta = parsed.get("metadata") if isinstance(parsed, dict) else None
        precondition = str(meta.get("resourceVersion") or "") if isinstance(meta, dict) else ""
        components, root = self.schemas.components(kind), self.schemas.root(kind)

        def change(old: Obj) -> Obj:
            new = apply_patch(content_type, components, root, old, parsed)
            if not isinstance(new, dict):
                raise bad_request("the patched object is not a JSON object")
            return new

        return self.guaranteed_update(kind, (namespace, name), change, precondition=precondition,
                                      subresource=subresource, options=options)

    def bind(self, kind: ResourceKind, namespace: str, name: str, binding: object) -> Entry:
        """pods/binding: set spec.nodeName once and mark the pod scheduled, as the scheduler's bind does."""
        target = binding.get("target") if isinstance(binding, dict) else None
        node = target.get("name") if isinstance(target, dict) else None
        if not node or not isinstance(node, str):
            raise invalid("Binding", "", name, [cause("target.name", "Required value", "FieldValueRequired")])

        def assign(pod: Obj) -> Obj:
            current = (pod.get("spec") or {}).get("nodeName")
            if current:
                raise conflict("pods/binding", name, f'pod {name} is already assigned to node "{current}"')
            pod.setdefault("spec", {})["nodeName"] = node
            conditions = [c for c in (pod.get("status") or {}).get("conditions") or ()
                          if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": objects.now()})
            pod.setdefault("status", {})["conditions"] = conditions
            return pod

        # Both spec and status change: write through the status path's sibling, the whole object.
        return self.guaranteed_update(kind, (namespace, name), assign, precondition="", subresource="binding",
                                      options=WriteOptions())

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, kind: ResourceKind, namespace: str, name: str, options: Obj) -> Entry:
        """Delete now, or mark for deletion while finalizers remain; dependents go unless orphaned."""
        for _ in range(_RETRIES):
            old = self.get(kind, namespace, name)
            _check_preconditions(kind, old, options.get("preconditions") or {})
            if options.get("dryRun"):
                return old
            try:
                return self._delete_once(kind, (namespace, name), old, options)
            except ConflictError:
                continue
        raise conflict(kind.qualified, name, "too many concurrent writers; try again")

    def _delete_once(self, kind: ResourceKind, key: Key, old: Entry, options: Obj) -> Entry:
        if old.obj["metadata"].get("finalizers"):
            if old.obj["metadata"].get("deletionTimestamp"):
                return old
            marked = json.loads(old.raw)
            marked["metadata"]["deletionTimestamp"] = objects.now()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            return self.store.replace(kind.qualified, key, marked, old.rv)
        if kind.plural == NAMESPACES:
            self._empty_namespace(key[1])
        entry = self.store.delete(kind.qualified, key, old.rv)
        if options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents"):
            self.orphan(entry)
        else:
            self.collect(entry)
        return entry

    def _empty_namespace(self, namespace: str) -> None:
        for kind in KINDS:
            if kind.namespaced:
                for entry in self.store.snapshot(kind.qualified, namespace)[0]:
                    self._delete_quietly(kind.qualified, (namespace, entry.obj["metadata"]["name"]))

    def collect(self, deleted: Entry) -> None:
        """Garbage collection: delete every dependent none of whose owners exists any more."""
        pending = [deleted.uid]
        while pending:
            uid = pending.pop()
            for resource, key in self.store.dependents(uid):
                entry = self.store.get(resource, key)
                if entry is None:
                    continue
                owners = [str(r.get("uid", "")) for r in entry.obj["metadata"].get("ownerReferences") or ()]
                if any(self.store.uid_exists(owner) for owner in owners):
                    continue
                gone = self._delete_quietly(resource, key)
                if gone is not None:
                    pending.append(gone.uid)

    def _delete_quietly(self, resource: str, key: Key) -> Entry | None:
        try:
            return self.store.delete(resource, key)
        except ConflictError:
            return None

    def orphan(self, deleted: Entry) -> None:
        """Orphan propagation: dependents stay, without the reference to the deleted owner."""
        for resource, key in self.store.dependents(deleted.uid):
            entry = self.store.get(resource, key)
            if entry is None:
                continue
            obj = json.loads(entry.raw)
            refs = [r for r in obj["metadata"].get("ownerReferences") or () if r.get("uid") != deleted.uid]
            obj["metadata"]["ownerReferences"] = refs
            if not refs:
                del obj["metadata"]["ownerReferences"]
            try:
                self.store.replace(resource, key, obj, entry.rv)
            except ConflictError:
                log.warning("orphaning lost a race", extra={"resource": resource, "name": key[1]})


def _check_preconditions(kind: ResourceKind, old: Entry, pre: Obj) -> None:
    name = str(old.obj["metadata"]["name"])
    if pre.get("uid") and pre["uid"] != old.uid:
        raise conflict(kind.qualified, name,
                       f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                       f"{old.uid}")
    if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(old.rv):
        raise conflict(kind.qualified, name, f"Precondition failed: ResourceVersion in precondition: "
                                             f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                             f"{old.rv}")


def _key_of(entry: Entry) -> tuple[str, str]:
    meta = entry.obj["metadata"]
    return str(meta.get("namespace", "")), str(meta["name"])


def _decode_token(token: str) -> tuple[str, str]:
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(namespace), str(name)
    except (ValueError, TypeError) as err:
        raise bad_request(f"continue key is not valid: {err}") from err
