"""Thread-safe object storage with one cluster-wide resourceVersion and a bounded event log.

The store plays etcd's part: every write takes the next resourceVersion, compare-and-swap on that
version is the only way to replace an object (so concurrent writers get 409 instead of losing an
update), and the log of the last ``history`` changes lets watches resume from a version; anything
older is answered with 410 Gone, as the real watch cache does. Stored objects are never mutated after
they are stored; each keeps its JSON encoding so reads and watch events cost no serialization.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from api.errors import XPUShareError
from dra_driver.core.kube import ConflictError
from dra_driver.core.kubetypes import Obj

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped kinds


class TooOldError(XPUShareError):
    """A watch asked for changes older than the kept history."""


@dataclass(frozen=True)
class Entry:
    """One stored object version: the dict (read-only by convention) and its JSON bytes."""

    obj: Obj
    raw: bytes
    rv: int

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"].get("uid", ""))


@dataclass(frozen=True)
class Event:
    """One change, as watchers receive it."""

    rv: int
    type: str
    resource: str
    key: Key
    entry: Entry
    previous: Entry | None = None


def encode(obj: Obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Store:
    """All objects of all kinds, keyed by resource name (``plural.group``) and (namespace, name)."""

    def __init__(self, history: int = 10_000) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._rv = 0
        self._data: dict[str, dict[Key, Entry]] = {}
        self._log: deque[Event] = deque()
        self._history = history
        self._valid_from = 0
        self._dependents: dict[str, set[tuple[str, Key]]] = {}
        self._uids: set[str] = set()
        self.closed = False

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def get(self, resource: str, key: Key) -> Entry | None:
        # A dict read is atomic under the GIL and entries are immutable: no lock on the hot path.
        return self._data.get(resource, {}).get(key)

    def snapshot(self, resource: str, namespace: str | None = None) -> tuple[list[Entry], int]:
        """Entries in key order (namespace, then name) and the version the snapshot reflects."""
        with self._cond:
            bucket = self._data.get(resource, {})
            keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
            return [bucket[k] for k in keys], self._rv

    def uid_exists(self, uid: str) -> bool:
        return uid in self._uids

    def dependents(self, uid: str) -> list[tuple[str, Key]]:
        with self._cond:
            return sorted(self._dependents.get(uid, ()))

    def create(self, resource: str, key: Key, obj: Obj) -> Entry:
        with self._cond:
            bucket = self._data.setdefault(resource, {})
            if key in bucket:
                raise ConflictError(f"{resource} {key} already exists", 409, "Conflict")
            return self._commit("ADDED", resource, key, obj, None)

    def replace(self, resource: str, key: Key, obj: Obj, expected_rv: int) -> Entry:
        with self._cond:
            old = self._data.get(resource, {}).get(key)
            if old is None or old.rv != expected_rv:
                raise ConflictError(f"{resource} {key} changed since version {expected_rv}", 409, "Conflict")
            return self._commit("MODIFIED", resource, key, obj, old)

    def delete(self, resource: str, key: Key, expected_rv: int | None = None) -> Entry:
        with self._cond:
            old = self._data.get(resource, {}).get(key)
            if old is None or (expected_rv is not None and old.rv != expected_rv):
                raise ConflictError(f"{resource} {key} changed or vanished", 409, "Conflict")
            obj = json.loads(old.raw)
            return self._commit("DELETED", resource, key, obj, old)

    def _commit(self, kind: str, resource: str, key: Key, obj: Obj, old: Entry | None) -> Entry:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        entry = Entry(obj, encode(obj), self._rv)
        if old is not None:
            self._unindex(resource, key, old)
        if kind == "DELETED":
            del self._data[resource][key]
        else:
            self._data.setdefault(resource, {})[key] = entry
            self._index(resource, key, entry)
        self._log.append(Event(self._rv, kind, resource, key, entry, old))
        if len(self._log) > self._history:
            self._valid_from = self._log.popleft().rv
        self._cond.notify_all()
        return entry

    def _index(self, resource: str, key: Key, entry: Entry) -> None:
        self._uids.add(entry.uid)
        for ref in entry.obj["metadata"].get("ownerReferences") or ():
            self._dependents.setdefault(str(ref.get("uid", "")), set()).add((resource, key))

    def _unindex(self, resource: str, key: Key, entry: Entry) -> None:
        self._uids.discard(entry.uid)
        for ref in entry.obj["metadata"].get("ownerReferences") or ():
            deps = self._dependents.get(str(ref.get("uid", "")))
            if deps is not None:
                deps.discard((resource, key))

    def events_after(self, rv: int, timeout: float) -> tuple[list[Event], int]:
        """Changes newer than ``rv``, waiting up to ``timeout`` for the first; raises TooOld.

        Returns the events and the newest version seen, so a caller can resume from it.
        """
        with self._cond:
            if rv < self._valid_from:
                raise TooOldError(f"too old resource version: {rv} ({self._valid_from + 1})")
            if self._rv <= rv and not self.closed:
                self._cond.wait(timeout)
            if rv < self._valid_from:
                raise TooOldError(f"too old resource version: {rv} ({self._valid_from + 1})")
            return list(_newer(self._log, rv)), max(rv, self._rv)

    def close(self) -> None:
        """Wake every waiting watch so it ends; used when the server stops."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _newer(log: deque[Event], rv: int) -> Iterator[Event]:
    tail: list[Event] = []
    for event in reversed(log):
        if event.rv <= rv:
            break
        tail.append(event)
    return reversed(tail)
