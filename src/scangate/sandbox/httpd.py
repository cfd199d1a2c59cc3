"""The threaded HTTP server under every emulator: quiet, keep-alive, and quick to stop."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from scangate.sandbox.clock import Clock
from scangate.sandbox.wire import Request, Response

MAX_REQUEST_BYTES = 1 << 20
"""A request body larger than this is refused with 413 (no client of ours sends one)."""


@dataclass
class Outcome:
    """What to do with one request: answer it, or drop or hang the connection."""

    response: Response | None
    """None: close the connection without answering."""
    fault: str | None = None
    hang: float = 0.0
    """Seconds to hold the connection before closing it (a `timeout` fault)."""


class Owner(Protocol):
    """What the server needs from the `EmulatorServer` that owns it."""

    @property
    def clock(self) -> Clock:
        """The emulator clock (stamps the request log)."""
        ...

    def handle(self, request: Request, arrived: float) -> Outcome:
        """Decide the outcome of `request` and log it."""
        ...

    def too_large(self) -> Response:
        """The answer to an oversized body."""
        ...

    def wait_stopping(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when the server stops."""
        ...


def shutdown_fast(httpd: QuietHTTPServer, address: tuple[str, int]) -> None:
    """`httpd.shutdown()` without waiting out the serve loop's poll interval.

    `shutdown()` blocks until the loop sees the request, which it does only when its `select`
    returns: a throwaway connection wakes it at once.
    """
    stopper = threading.Thread(target=httpd.shutdown, name="sandbox-stop", daemon=True)
    stopper.start()
    deadline = time.monotonic() + 1.0
    while stopper.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=0.1).close()
        stopper.join(0.01)


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading server that tracks its connections and handler threads for a fast stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    """The listen backlog: one emulator serves a whole CI matrix of clients connecting at once
    (socketserver's default of 5 drops the rest of a herd's connections)."""

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: Owner
    ) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="sandbox-connection",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: a client hanging up is normal here; handler crashes are caught earlier."""

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))


class RequestHandler(BaseHTTPRequestHandler):
    """Reads one request, lets `EmulatorServer.handle` decide, writes (or withholds) the answer."""

    server: QuietHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "scangate-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    """Headers and body go out in separate writes; Nagle plus delayed ACKs would add 40 ms."""
    timeout = 30.0
    """Idle keep-alive connections are closed after this long."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log replaces the stderr access log."""

    def do_GET(self) -> None:
        """Serve GET."""
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        owner = self.server.owner
        arrived = owner.clock.monotonic()
        request = self._read()
        if request is None:
            return
        outcome = owner.handle(request, arrived)
        if outcome.response is None:
            owner.wait_stopping(outcome.hang)
            self.close_connection = True
            return
        self._write(outcome.response)

    def _read(self) -> Request | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            # Read it anyway (in chunks) so the client gets the answer instead of a reset.
            while length > 0:
                length -= len(self.rfile.read(min(length, 1 << 16)) or b"\0" * length)
            error = self.server.owner.too_large()
            self.close_connection = True
            self._write(error)
            return None
        split = urlsplit(self.path)
        return Request(
            method=self.command,
            path=split.path,
            query=MappingProxyType(
                {k: tuple(v) for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            ),
            headers=MappingProxyType({k.lower(): v for k, v in self.headers.items()}),
            header_names=tuple(self.headers.keys()),
            body=self.rfile.read(length) if length > 0 else b"",
        )

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
