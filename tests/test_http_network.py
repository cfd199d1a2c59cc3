"""Requests that get no answer, over real sockets on 127.0.0.1: each failure has its own
diagnosis (with the attempts and the time they took) and the log hears of every retry.

The sockets: a port nothing listens on, a listener that accepts and never answers, a listener
whose backlog is full (connects time out), TLS servers with a self-signed certificate (made
with `cryptography`) or speaking plain HTTP, and a name under `.invalid`, which
RFC 6761 guarantees never resolves (the resolver answers at once; nothing leaves the host).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ports import closed_port
from tls import self_signed_certificate

from scangate.errors import AmbiguousStartError, ExitStatus, ProviderUnavailableError
from scangate.http import Connection, HttpClient, HttpContract
from scangate.redact import Redactor

KEY = "sk_live_network_0123456789"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy may intercept loopback or the `.invalid` name."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


class Records(logging.Handler):
    """The WARNING records of `scangate.http`, as they come."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def warnings() -> Iterator[list[logging.LogRecord]]:
    """What `scangate.http` logs at WARNING (the console shows it without --debug)."""
    logger = logging.getLogger("scangate.http")
    handler = Records()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def client(base_url: str, **options: Any) -> HttpClient:
    """A client named `scanner` sending an API key, with real time and small backoff."""
    options.setdefault("backoff", 0.05)
    contract = HttpContract(
        provider="scanner",
        credential_hint="SCANNER_API_KEY",
        authorize=lambda method, url: {"X-API-Key": KEY},
    )
    connection = Connection(base_url=base_url, redactor=Redactor([KEY]), **options)
    return HttpClient(connection, contract)


class Listener:
    """A TCP listener on 127.0.0.1 whose accepted connections get `serve(connection)`."""

    def __init__(self, serve: Callable[[socket.socket], None], backlog: int = 16) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.serve = serve
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.serve(conn)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    started: list[Listener] = []
    yield started
    for listener in started:
        listener.close()


def silent(conn: socket.socket) -> None:
    """Accept, read the request, never answer (the connection stays open)."""
    conn.recv(65536)


def answer_after(seconds: float) -> Callable[[socket.socket], None]:
    def serve(conn: socket.socket) -> None:
        conn.recv(65536)
        time.sleep(seconds)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    return serve


def plain_http(conn: socket.socket) -> None:
    """Whatever arrives (a TLS ClientHello), answer in plain HTTP: the handshake fails."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for IP 127.0.0.1 and its key (PEM)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def tls_server(certificate: tuple[Path, Path]) -> Callable[[socket.socket], None]:
    """Serve TLS with the self-signed certificate, answering `{}` to whoever trusts it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))

    def serve(conn: socket.socket) -> None:
        try:
            wrapped = context.wrap_socket(conn, server_side=True)
        except ssl.SSLError:
            return  # the client refused the certificate
        wrapped.recv(65536)
        wrapped.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        wrapped.close()

    return serve


def messages(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


def fails(http: HttpClient) -> ProviderUnavailableError:
    with pytest.raises(ProviderUnavailableError) as err:
        http.json("GET", "scans")
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert KEY not in err.value.diagnostics()
    return err.value


# Each failure, told apart by the types in the exception chain.


def test_a_refused_connection_names_the_cause_attempts_and_time(
    warnings: list[logging.LogRecord],
) -> None:
    with closed_port() as port:
        error = fails(client(f"http://127.0.0.1:{port}/v1", retries=2))
    assert error.message.startswith(
        f"scanner: cannot reach 127.0.0.1:{port}: nothing listens there (connection refused)"
        " — after 3 attempts in "
    )
    assert "is the service up?" in error.hint and "provider.base_url" in error.hint
    assert messages(warnings) == [
        f"scanner (127.0.0.1:{port}) refused the connection (nothing listens there); "
        f"attempt {n} of 3 in {wait}"
        for n, wait in ((2, "0.0 s"), (3, "0.1 s"))
    ]


def test_a_name_that_does_not_resolve_is_a_dns_failure(
    warnings: list[logging.LogRecord],
) -> None:
    error = fails(client("https://scanner.invalid/v1", retries=1))
    assert error.message.startswith(
        "scanner: cannot reach scanner.invalid: the name scanner.invalid does not resolve "
        "(DNS failure) — after 2 attempts in "
    )
    assert "host name in provider.base_url" in error.hint
    assert messages(warnings) == [
        "scanner (scanner.invalid): the name does not resolve (DNS failure); "
        "attempt 2 of 2 in 0.0 s"
    ]


def test_a_server_that_never_answers_is_a_read_timeout_not_unreachable(
    listeners: list[Listener], warnings: list[logging.LogRecord]
) -> None:
    server = Listener(silent)
    listeners.append(server)
    began = time.monotonic()
    error = fails(client(f"http://127.0.0.1:{server.port}/v1", retries=1, timeout=(2.0, 0.4)))
    took = time.monotonic() - began
    assert error.message.startswith(
        f"scanner: 127.0.0.1:{server.port} accepted the connection but sent no answer within "
        "0.4 s (ReadTimeout) — after 2 attempts in "
    )
    said = float(error.message.rsplit(" in ", 1)[1].removesuffix(" s"))
    assert 0.8 <= said <= took + 0.05  # both attempts' time, from the first send
    assert "reachable but slow" in error.hint
    assert messages(warnings) == [
        f"no answer from scanner (127.0.0.1:{server.port}) after 0.4 s (read timeout); "
        "attempt 2 of 2 in 0.0 s"
    ]
    assert len(server.accepted) == 2


def test_a_connect_that_times_out_is_a_connect_timeout(
    listeners: list[Listener], warnings: list[logging.LogRecord]
) -> None:
    # A listener never accepting, its backlog filled by one connection: Linux drops the next
    # SYNs, so a connect waits until its timeout.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = int(full.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        error = fails(client(f"http://127.0.0.1:{port}/v1", retries=1, timeout=(0.3, 5.0)))
    finally:
        filler.close()
        full.close()
    assert error.message.startswith(
        f"scanner: cannot reach 127.0.0.1:{port}: no connection within 0.3 s (connect timeout)"
        " — after 2 attempts in "
    )
    assert "firewall" in error.hint
    assert messages(warnings) == [
        f"no connection to scanner (127.0.0.1:{port}) after 0.3 s (connect timeout); "
        "attempt 2 of 2 in 0.0 s"
    ]


def test_an_untrusted_certificate_is_a_tls_failure_and_not_retried(
    listeners: list[Listener], warnings: list[logging.LogRecord], certificate: tuple[Path, Path]
) -> None:
    server = Listener(tls_server(certificate))
    listeners.append(server)
    error = fails(client(f"https://127.0.0.1:{server.port}/v1", retries=3))
    assert error.message.startswith(
        f"scanner: TLS with 127.0.0.1:{server.port} failed: certificate verify failed: "
        "self-signed certificate — after 1 attempt in "
    )
    assert "provider.verify_tls" in error.hint and "CA bundle" in error.hint
    assert warnings == []  # a certificate that failed verification fails it again
    assert len(server.accepted) == 1


def test_the_hints_fix_works_the_ca_bundle_as_verify_tls(
    listeners: list[Listener], certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI images often set REQUESTS_CA_BUNDLE; requests would let it override the session's
    # own bundle (psf/requests#4650), so the test sets it to a bundle without our CA.
    paths = ssl.get_default_verify_paths()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", paths.cafile or paths.openssl_cafile)
    server = Listener(tls_server(certificate))
    listeners.append(server)
    http = client(f"https://127.0.0.1:{server.port}/v1", verify=str(certificate[0]))
    assert http.json("GET", "scans") == {}


def test_a_port_that_does_not_speak_tls_is_a_failed_handshake(
    listeners: list[Listener],
) -> None:
    server = Listener(plain_http)
    listeners.append(server)
    error = fails(client(f"https://127.0.0.1:{server.port}/v1", retries=0))
    assert error.message.startswith(
        f"scanner: TLS with 127.0.0.1:{server.port} failed: the TLS handshake failed — after"
    )
    assert "speaks HTTPS" in error.hint


def test_a_start_that_times_out_is_ambiguous_and_says_why(listeners: list[Listener]) -> None:
    server = Listener(silent)
    listeners.append(server)
    http = client(f"http://127.0.0.1:{server.port}/v1", retries=3, timeout=(2.0, 0.3))
    with pytest.raises(AmbiguousStartError) as err:
        http.json("POST", "scans", json_body={"target": "x"}, creates=True)
    assert err.value.message == (
        "scanner: the start request got no answer: 127.0.0.1:"
        f"{server.port} accepted the connection but sent no answer within 0.3 s (ReadTimeout)"
    )
    assert len(server.accepted) == 1  # never sent twice


# The log hears of a waiting request at least every `line_every` seconds.


def test_a_slow_answer_is_told_while_it_is_awaited(
    listeners: list[Listener], warnings: list[logging.LogRecord]
) -> None:
    server = Listener(answer_after(1.3))
    listeners.append(server)
    http = client(f"http://127.0.0.1:{server.port}/v1", line_every=0.4, timeout=(2.0, 5.0))
    assert http.json("GET", "scans") == {}
    told = [m for m in messages(warnings) if m.startswith("still waiting")]
    assert len(told) >= 2
    assert told[0].startswith(
        f"still waiting for an answer from scanner (127.0.0.1:{server.port}): GET /v1/scans "
        "sent 0.4 s ago (attempt 1 of 5)"
    )
    gaps = [b.created - a.created for a, b in zip(warnings, warnings[1:], strict=False)]
    assert all(gap <= 0.4 + 0.2 for gap in gaps)


def test_retry_lines_and_waiting_lines_together_leave_no_long_silence(
    listeners: list[Listener], warnings: list[logging.LogRecord]
) -> None:
    server = Listener(silent)
    listeners.append(server)
    http = client(
        f"http://127.0.0.1:{server.port}/v1",
        retries=2,
        timeout=(2.0, 0.9),
        line_every=0.5,
        backoff=0.2,
    )
    began = time.time()
    fails(http)
    ended = time.time()
    times = [began] + [record.created for record in warnings] + [ended]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) <= 0.5 + 0.25
    said = messages(warnings)
    assert sum(m.startswith("no answer from scanner") for m in said) == 2
    assert sum(m.startswith("still waiting for an answer") for m in said) >= 3
