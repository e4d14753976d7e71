"""The small HTTP servers of our processes (metrics endpoint, admission webhook), served by the standard
library on daemon threads.

One base handler (HTTP/1.1 keep-alive, no Nagle delay, request lines logged at DEBUG only) and one
runner (start, port, a stop that is safe twice and before start), so each server only routes requests.

Clients are not trusted to be quick or well-formed, so no client can hold up another: the accept loop
only accepts, and each connection runs on its own thread (at most ``Limits.max_connections`` at once;
when all are taken, the connection that has waited longest for a request is closed to make room, and
only when none is waiting is the new one closed at once, never queued behind slow ones: so connections
held open without requests cannot lock clients out). There, TLS is negotiated and every
stage has a deadline for the whole stage, not per read, so a client trickling one byte a second
(slowloris) is cut off as surely as a silent one. A request's body is only read through ``read_body``,
which caps its size. The standard library's parser already bounds the request line and headers (64 KiB
a line, 100 headers); what it lacks is this policy, so this module adds it rather than a new server.
"""

from __future__ import annotations

import contextlib
import io
import logging
import select
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler
from typing import Any, Self

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"
MAX_REQUEST_LINE = 65536  # the standard library's own bound on the request line


@dataclass(frozen=True)
class Limits:
    """How long each stage of a connection may take, in seconds, and how many connections are served at
    once. Each stage's deadline covers the whole stage, so trickled bytes do not extend it."""

    handshake_seconds: float = 5.0  # TLS handshake, from accept
    idle_seconds: float = 30.0  # waiting for a request's first byte (kept-alive connections)
    header_seconds: float = 10.0  # request line and headers, from their first byte
    body_seconds: float = 10.0  # the body, once the headers are in
    write_seconds: float = 10.0  # each send of the answer
    max_connections: int = 128


EVICTION_WAIT_SECONDS = 0.5  # for an evicted idle connection's thread to free its slot


class DeadlineError(TimeoutError):
    """A stage of a request was not received in time; the message names the stage and its limit."""


class _DeadlineReader(io.RawIOBase):
    """Reads a socket under a deadline for the whole current stage (set by ``expect``), not per read."""

    def __init__(self, sock: socket.socket, write_seconds: float) -> None:
        super().__init__()
        self._sock = sock
        self._write_seconds = write_seconds
        self._deadline = time.monotonic() + write_seconds
        self._stage = "request"
        self._seconds = write_seconds

    def expect(self, stage: str, seconds: float) -> None:
        self._stage, self._seconds = stage, seconds
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineError(f"{self._stage}: not received within {self._seconds:g} s")
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError as err:
            raise DeadlineError(f"{self._stage}: not received within {self._seconds:g} s") from err
        finally:
            self._sock.settimeout(self._write_seconds)  # what the answer's sends get


def _handshake(conn: ssl.SSLSocket, seconds: float) -> None:
    """Negotiate TLS within ``seconds`` overall: a blocking ``do_handshake`` with a socket timeout would
    restart its clock on every byte a trickling client sends."""
    deadline = time.monotonic() + seconds
    conn.setblocking(False)
    poller = select.poll()
    while True:
        try:
            conn.do_handshake()
            return
        except ssl.SSLWantReadError:
            poller.register(conn, select.POLLIN)
        except ssl.SSLWantWriteError:
            poller.register(conn, select.POLLOUT)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise DeadlineError(f"TLS handshake: not done within {seconds:g} s")


class DaemonHTTPServer(ThreadingHTTPServer):
    """Each connection on its own daemon thread, so a stuck client never keeps the process alive; TLS
    (when ``tls`` is given) is negotiated there too, never in the accept loop."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseRequestHandler],
        *,
        limits: Limits | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.tls = tls
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._full = False
        self._idle: dict[int, socket.socket] = {}  # connections waiting for a request, oldest first
        self._idle_lock = threading.Lock()
        super().__init__(address, handler)

    def mark_idle(self, conn: socket.socket, idle: bool) -> None:
        """Whether ``conn`` is waiting for a request's first byte (then it may be evicted)."""
        with self._idle_lock:
            if idle:
                self._idle[id(conn)] = conn
            else:
                self._idle.pop(id(conn), None)

    def _evict_idle(self) -> bool:
        """Close the longest-waiting idle connection, so that connections held open without requests
        cannot keep new clients out (its thread sees the close and frees its slot)."""
        with self._idle_lock:
            if not self._idle:
                return False
            conn = self._idle.pop(next(iter(self._idle)))
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        return True

    def _take_slot(self) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        return self._evict_idle() and self._slots.acquire(timeout=EVICTION_WAIT_SECONDS)

    def process_request(self, request: Any, client_address: Any) -> None:
        """On the accept loop: hand the connection to a thread, else make room by closing the oldest idle
        connection, else close this one: every slot is busy with a request or a handshake, each under
        its deadline."""
        if not self._take_slot():
            if not self._full:  # once per episode: a flood must not flood the log too
                log.warning(
                    "connections refused: all slots taken", extra={"limit": self.limits.max_connections}
                )
                self._full = True
            self.shutdown_request(request)
            return
        self._full = False
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        conn = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            try:
                _handshake(conn, self.limits.handshake_seconds)
            except OSError as err:  # SSLError and timeouts included: this client only
                log.debug("TLS handshake failed", extra={"client": client_address[0], "error": str(err)})
                return
            conn.setblocking(True)
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is routine; anything else is a bug, logged without printing to
        stderr (the default)."""
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            log.debug("connection ended", extra={"client": client_address[0], "error": str(err)})
        else:
            log.exception("error serving a connection", extra={"client": client_address[0]})


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else a client's delayed ACK adds ~40 ms to each keep-alive request
    server: DaemonHTTPServer
    _reader: _DeadlineReader
    _buffered: io.BufferedReader
    _answered: bool

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the plain reader the base made; requests are read under deadlines instead
        write_seconds = self.server.limits.write_seconds
        self.connection.settimeout(write_seconds)
        self._reader = _DeadlineReader(self.connection, write_seconds)
        self._buffered = io.BufferedReader(self._reader)
        self.rfile = self._buffered

    def handle_one_request(self) -> None:
        """The standard library's, with a deadline on each stage and an answer for every failure."""
        limits = self.server.limits
        self._answered = False
        self.command, self.requestline, self.request_version = "", "", self.protocol_version
        self.close_connection = True  # until a request was read and answered
        self._reader.expect("request", limits.idle_seconds)
        self.server.mark_idle(self.connection, True)
        try:
            if not self._buffered.peek(1):
                return  # the client closed a kept-alive connection (or it was evicted)
        except DeadlineError:
            return  # idle: close quietly
        finally:
            self.server.mark_idle(self.connection, False)
        self._reader.expect("request headers", limits.header_seconds)
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.send_body(414, b"request line: too long\n", close=True)
                return
            if not self.parse_request():
                return  # answered (400, 431, 505)
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_body(501, f"method {self.command}: not supported\n".encode(), close=True)
                return
            method()
            self.wfile.flush()
        except DeadlineError as err:
            self.send_body(408, f"{err}\n".encode(), close=True)
        except OSError:
            raise  # the client went away or stopped reading: nobody to answer
        except Exception:
            log.exception("error answering a request", extra={"path": getattr(self, "path", "")})
            self.send_body(500, b"internal error\n", close=True)

    def read_body(self, limit: int) -> bytes | None:
        """The request's body under the body deadline, or None when refused (then it is answered and the
        connection closes): a body must come with one Content-Length of at most ``limit`` bytes."""
        length = self._content_length(limit)
        if length is None:
            return None
        self._reader.expect("request body", self.server.limits.body_seconds)
        data = self.rfile.read(length)
        if len(data) < length:
            self.send_body(400, f"request body: ended after {len(data)} of {length} bytes\n".encode(),
                           close=True)  # fmt: skip
            return None
        return data

    def _content_length(self, limit: int) -> int | None:
        """The one Content-Length, at most ``limit``; else None, with the refusal answered."""
        values = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        text = next(iter(values), "")
        if "Transfer-Encoding" in self.headers:
            status, problem = 411, "Transfer-Encoding: not accepted; send the body with Content-Length"
        elif not values:
            status, problem = 411, "Content-Length: required"
        elif len(values) > 1:
            status, problem = 400, "Content-Length: given more than once with different values"
        elif not (text.isascii() and text.isdigit()):
            status, problem = 400, f"Content-Length: must be a byte count (got {text[:40]!r})"
        elif len(text) > 18 or int(text) > limit:
            status, problem = 413, f"Content-Length: {text[:40]} bytes is over the limit of {limit}"
        else:
            return int(text)
        self.send_body(status, f"{problem}\n".encode(), close=True)
        return None

    def send_body(self, status: int, data: bytes, content_type: str = TEXT, close: bool = False) -> None:
        """Answer once; ``close`` ends the connection after it (the request was not read to its end)."""
        if self._answered:
            return
        self._answered = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, type(self).__module__, *args)


class BackgroundServer:
    """Runs an HTTP server's ``serve_forever`` on a named daemon thread."""

    def __init__(self, server: ThreadingHTTPServer, thread_name: str) -> None:
        self.server = server
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice and before ``start``."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()


class Endpoint:
    """Base of a process's servers: ``start`` returns at once (logging where it listens), ``stop`` waits."""

    _runner: BackgroundServer
    _listening = "listening"  # the start-up log line

    @property
    def port(self) -> int:
        return self._runner.port

    def listening_at(self) -> dict[str, object]:
        """What the start-up log line says about the address."""
        return {"port": self.port}

    def start(self) -> Self:
        self._runner.start()
        log.info(self._listening, extra=self.listening_at())
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice and before ``start``."""
        self._runner.stop()
