"""Watch streams: chunked JSON lines of ADDED/MODIFIED/DELETED events, resumable from a version.

A watch without a resourceVersion (or with "0") first sends the current objects as ADDED, as the real
server does; one with a version sends every later change from the store's log, and one older than the
log gets a single ERROR event carrying a 410 Expired Status, which the official client's
``Watch.stream`` and client-go's reflector turn into a fresh list. The stream ends at ``timeoutSeconds``,
when the client goes away, or when the server stops.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from dra_driver.core.kubetypes import Obj
from dra_driver.simulation.apiserver.registry import ResourceKind
from dra_driver.simulation.apiserver.resources import Resources
from dra_driver.simulation.apiserver.status import gone
from dra_driver.simulation.apiserver.store import Event, TooOldError

_POLL_SECONDS = 1.0
_BOOKMARK_SECONDS = 5.0
_MAX_SECONDS = 1800.0


@dataclass(frozen=True)
class WatchRequest:
    kind: ResourceKind
    namespace: str | None
    match: Callable[[Obj], bool] | None
    resource_version: str
    timeout: float
    bookmarks: bool
    initial_events_end: bool


def event_line(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"


class WatchStream:
    """Writes one watch response; ``write`` sends one chunk and returns False once the client is gone."""

    def __init__(self, resources: Resources, request: WatchRequest, write: Callable[[bytes], bool],
                 connection: socket.socket) -> None:
        self.resources = resources
        self.request = request
        self.write = write
        self.connection = connection

    def run(self) -> None:
        req = self.request
        rv = self._initial(req)
        if rv is None:
            return
        deadline = time.monotonic() + (req.timeout if req.timeout > 0 else _MAX_SECONDS)
        last_bookmark = time.monotonic()
        store = self.resources.store
        while not store.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                events, newest = store.events_after(rv, min(remaining, _POLL_SECONDS))
            except TooOldError as err:
                self.write(event_line("ERROR", json.dumps(gone(str(err)).body()).encode()))
                return
            for event in events:
                kind = self._translate(event)
                if kind and not self.write(event_line(kind, event.entry.raw)):
                    return
            rv = newest
            if not events:
                if self._client_gone():
                    return
                if req.bookmarks and time.monotonic() - last_bookmark > _BOOKMARK_SECONDS:
                    last_bookmark = time.monotonic()
                    if not self.write(self._bookmark(rv, False)):
                        return

    def _initial(self, req: WatchRequest) -> int | None:
        if req.resource_version not in ("", "0") and not req.initial_events_end:
            return int(req.resource_version)
        listing = self.resources.list_objects(req.kind, req.namespace, req.match)
        for entry in listing.entries:
            if not self.write(event_line("ADDED", entry.raw)):
                return None
        if req.initial_events_end and not self.write(self._bookmark(listing.resource_version, True)):
            return None
        return listing.resource_version

    def _translate(self, event: Event) -> str:
        """The event type this watcher sees ("" for none): an object that starts matching a selector is
        ADDED for it and one that stops matching is DELETED, as kube-apiserver's watch cache does."""
        req = self.request
        if event.resource != req.kind.qualified:
            return ""
        if req.namespace is not None and event.key[0] != req.namespace:
            return ""
        if req.match is None:
            return event.type
        now = req.match(event.entry.obj)
        if event.type != "MODIFIED":
            return event.type if now else ""
        before = event.previous is not None and req.match(event.previous.obj)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else ""

    def _bookmark(self, rv: int, initial_end: bool) -> bytes:
        meta: Obj = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.request.kind.kind, "apiVersion": self.request.kind.api_version, "metadata": meta}
        return event_line("BOOKMARK", json.dumps(obj).encode())

    def _client_gone(self) -> bool:
        """A readable socket with nothing to read means the peer closed its end.

        TLS sockets cannot peek, so the check looks at the TCP socket underneath (a duplicate of it).
        """
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            with socket.socket(fileno=os.dup(self.connection.fileno())) as raw:
                return raw.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
