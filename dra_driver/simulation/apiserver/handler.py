"""The HTTP side: one request handler that maps REST verbs on routes to the resource operations.

Every answer is JSON with a Content-Length (HTTP/1.1 keep-alive, so a client reuses its connection),
watches are chunked. Any StatusError becomes its Status; anything unexpected becomes a 500 Status and is
logged, so a bad request never takes the server down and never leaves an object half-written (writes
happen in one store call at the very end).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dra_driver.simulation.apiserver import discovery, openapi
from dra_driver.simulation.apiserver.patch import PATCH_TYPES
from dra_driver.simulation.apiserver.registry import Registry
from dra_driver.simulation.apiserver.resources import ListResult, Resources, WriteOptions
from dra_driver.simulation.apiserver.routing import Route, resolve_route
from dra_driver.simulation.apiserver.schema import SchemaSet
from dra_driver.simulation.apiserver.selectors import combine, parse_fields, parse_labels
from dra_driver.simulation.apiserver.status import (
    StatusError,
    bad_request,
    method_not_allowed,
    not_acceptable,
    path_not_found,
    success,
    too_large,
    unsupported_media,
)
from dra_driver.simulation.apiserver.store import Entry
from dra_driver.simulation.apiserver.tables import to_table, wants_table
from dra_driver.simulation.apiserver.watch import WatchRequest, WatchStream
from dra_driver.simulation.apiserver.wire import delete_options, int_param, list_payload, parse_body

log = logging.getLogger(__name__)
MAX_BODY = 3 * 1024 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class ApiContext:
    """What every request thread shares."""

    registry: Registry
    resources: Resources
    schemas: SchemaSet
    address: str


class ApiHttpServer(ThreadingHTTPServer):
    """Tracks open connections so that stopping the server also ends idle keep-alive connections."""

    daemon_threads = True
    block_on_close = False
    context: ApiContext

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "xpushare-sim"
    server: ApiHttpServer
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body would wait for the
    # client's delayed ACK (40 ms per request on Linux). kube-apiserver (Go) sets TCP_NODELAY too.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("request: " + format, *args)

    def _handle(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.split("/") if p]
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            body = self._read_body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
            if method == "GET" and self._meta(url.path, parts):
                return
            route = resolve_route(self.server.context.registry, url.path, parts)
            self._resource(method, route, query, body)
        except StatusError as err:
            self._send(err.code, json.dumps(err.body()).encode())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:
            log.exception("request failed", extra={"method": method, "path": self.path})
            failure = StatusError(500, "InternalError", "an error on the server has prevented the request "
                                  f"from succeeding: {err!r}")
            self._send(500, json.dumps(failure.body()).encode())

    # -- plumbing ----------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                raise StatusError(411, "BadRequest", "chunked request bodies are not supported; send a "
                                                  "Content-Length")
            return b""
        try:
            length = int(length_text)
        except ValueError as err:
            self.close_connection = True
            raise bad_request(f"bad Content-Length {length_text!r}") from err
        if length > MAX_BODY:
            self._drain(length)
            raise too_large()
        return self.rfile.read(length)

    def _drain(self, length: int) -> None:
        """Read and discard an oversized body so the client can read our 413 instead of a reset."""
        if length > _DRAIN_LIMIT:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def _send(self, code: int, payload: bytes, warnings: list[str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for warning in warnings or ():
            self.send_header("Warning", f'299 - "{warning}"'.replace("\n", " "))
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode())

    def _meta(self, path: str, parts: list[str]) -> bool:
        """Discovery, version, health and OpenAPI documents; True when the path was one of them."""
        ctx = self.server.context
        answer: Any = None
        if parts in (["version"], ["version", ""]):
            answer = discovery.version_info()
        elif parts == ["api"]:
            answer = discovery.api_versions(ctx.address)
        elif parts == ["apis"]:
            answer = discovery.api_group_list(ctx.registry)
        elif len(parts) == 2 and parts[0] == "apis":
            answer = discovery.api_group(ctx.registry, parts[1]) or _raise(path_not_found(path))
        elif len(parts) == 2 and parts[0] == "api":
            answer = discovery.resource_list(ctx.registry, "", parts[1]) or _raise(path_not_found(path))
        elif len(parts) == 3 and parts[0] == "apis":
            answer = discovery.resource_list(ctx.registry, parts[1], parts[2]) or _raise(path_not_found(path))
        elif parts in (["healthz"], ["livez"], ["readyz"]):
            self._send_plain(b"ok")
            return True
        elif parts[:2] == ["openapi", "v3"]:
            return self._openapi(path, parts[2:])
        elif parts == ["openapi", "v2"] and not ctx.schemas.available:
            return self._openapi_v2()
        else:
            return False
        self._send_json(200, answer)
        return True

    def _send_plain(self, text: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def _openapi(self, path: str, rest: list[str]) -> bool:
        ctx = self.server.context
        if not rest and ctx.schemas.available:
            self._send_json(200, discovery.openapi_v3_index(ctx.registry))
            return True
        if not rest:
            self._send_json(200, openapi.v3_index(discovery.openapi_document_prefixes(ctx.registry)))
            return True
        name = discovery.openapi_document_name(rest)
        try:
            payload = ctx.schemas.raw_document(name) if name else None
        except (OSError, KeyError):
            payload = None
        if payload is None:
            raise path_not_found(path)
        self._send(200, payload)
        return True

    def _openapi_v2(self) -> bool:
        """The generated swagger document, in JSON only: a client that accepts nothing but protobuf gets
        the 406 a server gives for a media type it cannot produce."""
        accept = self.headers.get("Accept", "") or "*/*"
        ranges = {part.split(";")[0].strip() for part in accept.split(",")}
        if not ranges & {"application/json", "application/*", "*/*"}:
            raise not_acceptable()
        self._send(200, openapi.v2_payload())
        return True

    # -- resources ---------------------------------------------------------------------------------
    def _resource(self, method: str, route: Route, query: dict[str, str], body: bytes) -> None:
        resources = self.server.context.resources
        watching = route.watch or query.get("watch", "") in ("true", "1")
        if method == "GET" and (watching or not route.name):
            self._list_or_watch(route, query, watching)
        elif method == "GET":
            entry = resources.get(route.kind, route.namespace or "", route.name)
            self._send_entry(200, entry)
        elif method == "POST" and not route.name and (route.namespace is not None or
                                                      not route.kind.namespaced):
            self._create(route, query, body)
        elif method == "POST" and route.subresource == "binding":
            self._bind(route, body)
        elif method in ("PUT", "PATCH") and route.name:
            self._modify(method, route, query, body)
        elif method == "DELETE" and route.name:
            self._delete(route, query, body)
        elif method == "DELETE":
            self._delete_collection(route, query, body)
        else:
            raise method_not_allowed("the server does not allow this method on the requested resource")

    def _send_entry(self, code: int, entry: Entry, warnings: list[str] | None = None) -> None:
        if wants_table(self.headers.get("Accept", "")):
            self._send_json(code, to_table([entry], entry.rv, ""))
            return
        self._send(code, entry.raw if entry.raw else json.dumps(entry.obj).encode(), warnings)

    def _matcher(self, route: Route, query: dict[str, str]) -> Any:
        fields = query.get("fieldSelector", "")
        if route.name:
            fields = ",".join(filter(None, [fields, f"metadata.name={route.name}"]))
        return combine(parse_labels(query.get("labelSelector")), parse_fields(route.kind, fields))

    def _list_or_watch(self, route: Route, query: dict[str, str], watching: bool) -> None:
        match = self._matcher(route, query)
        if watching:
            self._watch(route, query, match)
            return
        limit = int_param(query, "limit")
        listing = self.server.context.resources.list_objects(route.kind, route.namespace, match, limit,
                                                     query.get("continue", ""))
        if wants_table(self.headers.get("Accept", "")):
            self._send_json(200, to_table(listing.entries, listing.resource_version, listing.continue_token))
            return
        self._send(200, list_payload(route, listing))

    def _watch(self, route: Route, query: dict[str, str], match: Any) -> None:
        rv = query.get("resourceVersion", "")
        if rv and not rv.isdigit():
            raise bad_request(f"invalid resource version {rv!r}")
        timeout = float(int_param(query, "timeoutSeconds"))
        request = WatchRequest(route.kind, route.namespace, match, rv, timeout,
                               query.get("allowWatchBookmarks") == "true",
                               query.get("sendInitialEvents") == "true")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        WatchStream(self.server.context.resources, request, self._chunk, self.connection).run()
        self._chunk(b"")
        self.close_connection = True

    def _chunk(self, data: bytes) -> bool:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            return True
        except OSError:
            return False

    def _options(self, query: dict[str, str]) -> WriteOptions:
        return WriteOptions(strict=query.get("fieldValidation") == "Strict",
                            dry_run=bool(query.get("dryRun")))

    def _create(self, route: Route, query: dict[str, str], body: bytes) -> None:
        parsed = parse_body(self.headers.get("Content-Type", ""), body)
        options = self._options(query)
        entry = self.server.context.resources.create(route.kind, route.namespace or "", parsed, options)
        self._send_entry(201, entry, options.warnings)

    def _bind(self, route: Route, body: bytes) -> None:
        binding = parse_body(self.headers.get("Content-Type", ""), body)
        resources = self.server.context.resources
        entry = resources.bind(route.kind, route.namespace or "", route.name, binding)
        self._send_json(201, success("pods", "", route.name, entry.uid))

    def _modify(self, method: str, route: Route, query: dict[str, str], body: bytes) -> None:
        resources = self.server.context.resources
        options = self._options(query)
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if method == "PUT":
            parsed = parse_body(content_type, body)
            entry = resources.update(route.kind, route.namespace or "", route.name, parsed,
                                     subresource=route.subresource, options=options)
            self._send_entry(200, entry, options.warnings)
            return
        if content_type not in PATCH_TYPES:
            raise unsupported_media(content_type)
        existed = resources.store.get(route.kind.qualified, (route.namespace or "", route.name)) is not None
        entry = resources.patch(route.kind, route.namespace or "", route.name, body,
                                content_type=content_type, subresource=route.subresource, options=options)
        self._send_entry(200 if existed else 201, entry, options.warnings)

    def _delete(self, route: Route, query: dict[str, str], body: bytes) -> None:
        options = delete_options(query, body)
        entry = self.server.context.resources.delete(route.kind, route.namespace or "", route.name, options)
        pending = bool(entry.obj["metadata"].get("deletionTimestamp")) and \
            self.server.context.resources.store.get(route.kind.qualified, (route.namespace or "", route.name))
        if route.kind.delete_returns_object or pending:
            self._send_entry(202 if pending else 200, entry)
        else:
            self._send_json(200, success(route.kind.plural, route.kind.group, route.name, entry.uid))

    def _delete_collection(self, route: Route, query: dict[str, str], body: bytes) -> None:
        if route.kind.namespaced and route.namespace is None:
            raise method_not_allowed("deletecollection needs a namespace")
        resources = self.server.context.resources
        options = delete_options(query, body)
        listing = resources.list_objects(route.kind, route.namespace, self._matcher(route, query))
        deleted: list[Entry] = []
        for entry in listing.entries:
            try:
                name = str(entry.obj["metadata"]["name"])
                deleted.append(resources.delete(route.kind, route.namespace or "", name, options))
            except StatusError as err:
                if err.code != 404:
                    raise
        self._send(200, list_payload(route, ListResult(deleted, resources.store.resource_version)))


def _raise(err: StatusError) -> Any:
    raise err
