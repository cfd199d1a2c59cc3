"""End to end: a provider that cannot be reached, through the real CLI (issue 17, items 3, 4).

Each failure exits 3 with its own diagnosis (cause, attempts, time), every retry is a line in
the log as it happens, and `--debug` (or `SCANGATE_DEBUG=true`) shows each request and
response with no secret. The sockets are on 127.0.0.1; the unresolvable name is under
`.invalid` (RFC 6761: it never resolves, and nothing leaves the host).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ports import closed_port
from tls import self_signed_certificate

from e2e.support import cli_env, run_scenario, run_timed_lines, sandbox, scangate, write_policy
from scangate.providers import PROVIDER_NAMES
from scangate.sandbox import LogEntry, sandbox_env

pytestmark = pytest.mark.slow

PROVIDER = "cyberorigen"
CREDENTIALS = sandbox_env(PROVIDER)
ATTEMPTS = 5
"""The first request and its 4 retries (`Connection.retries`)."""


def run_timed(tmp_path: Path, base_url: str) -> tuple[int, list[tuple[float, str]]]:
    """`scangate run` against `base_url`: the exit status and each stderr line with the
    seconds since the start at which it arrived."""
    write_policy(tmp_path, PROVIDER, base_url)
    return run_timed_lines(scangate("run"), cwd=tmp_path, env=cli_env(CREDENTIALS), timeout=60)


def retry_lines(lines: list[tuple[float, str]]) -> list[str]:
    return [text for _, text in lines if re.search(r"; attempt \d of \d in ", text)]


def assert_no_long_silence(lines: list[tuple[float, str]]) -> None:
    """No 30 s without a line, from the start to the last line (issue 17)."""
    times = [0.0] + [at for at, _ in lines]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) <= 30.0


def test_a_closed_port_exits_3_saying_nothing_listens_with_attempts_and_time(
    tmp_path: Path,
) -> None:
    with closed_port() as port:
        status, lines = run_timed(tmp_path, f"http://127.0.0.1:{port}")
    assert status == 3
    said = "\n".join(text for _, text in lines)
    error = re.search(
        rf"scangate: error: cyberorigen: cannot reach 127\.0\.0\.1:{port}: nothing listens "
        rf"there \(connection refused\) — after {ATTEMPTS} attempts in (\d+\.\d) s",
        said,
    )
    assert error is not None, said
    assert float(error[1]) >= 6.0  # the backoff between the attempts: 1 + 2 + 4 s
    assert "hint: check the host and port in provider.base_url; is the service up?" in said
    assert retry_lines(lines) == [
        f"scangate: warning: cyberorigen (127.0.0.1:{port}) refused the connection "
        f"(nothing listens there); attempt {n} of {ATTEMPTS} in {wait}"
        for n, wait in ((2, "0.0 s"), (3, "1.0 s"), (4, "2.0 s"), (5, "4.0 s"))
    ]
    assert_no_long_silence(lines)
    assert CREDENTIALS["CYBERORIGEN_API_KEY"] not in said


def test_a_name_that_does_not_resolve_exits_3_as_a_dns_failure(tmp_path: Path) -> None:
    status, lines = run_timed(tmp_path, "https://cyberorigen.invalid")
    assert status == 3
    said = "\n".join(text for _, text in lines)
    assert (
        "scangate: error: cyberorigen: cannot reach cyberorigen.invalid: the name "
        "cyberorigen.invalid does not resolve (DNS failure) — after 5 attempts in "
    ) in said
    assert "hint: check the host name in provider.base_url" in said
    assert len(retry_lines(lines)) == ATTEMPTS - 1
    assert_no_long_silence(lines)


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[int]:
    """A TLS server on 127.0.0.1 with a self-signed certificate."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused the certificate

    threading.Thread(target=accept, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()


def test_an_untrusted_certificate_exits_3_at_once_naming_verify_tls(
    tmp_path: Path, self_signed_server: int
) -> None:
    status, lines = run_timed(tmp_path, f"https://127.0.0.1:{self_signed_server}")
    assert status == 3
    said = "\n".join(text for _, text in lines)
    assert (
        f"scangate: error: cyberorigen: TLS with 127.0.0.1:{self_signed_server} failed: "
        "certificate verify failed: self-signed certificate — after 1 attempt in "
    ) in said
    assert "provider.verify_tls" in said and "CA bundle" in said
    assert retry_lines(lines) == []  # a certificate that failed verification fails again


# --debug: every request and response, and no secret.


REQUEST = re.compile(r"^scangate: debug: → (GET|POST|PUT|PATCH|DELETE) http://127\.0\.0\.1:\d+/")
RESPONSE = re.compile(r"^scangate: debug: ← \d{3} .* (\d+ B|\d+\.\d [kM]B) in \d+ ms")


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_run_debug_logs_each_request_and_response_without_a_secret(
    tmp_path: Path, provider: str
) -> None:
    run, server = run_scenario(tmp_path, provider, "clean", args=("--debug",))
    assert run.exit == 0, run.stderr
    lines = run.stderr.splitlines()
    requests_logged = [line for line in lines if REQUEST.match(line)]
    responses_logged = [line for line in lines if RESPONSE.match(line)]
    assert len(requests_logged) == len(responses_logged) >= 3
    everything = run.everything()
    for name, value in sandbox_env(provider, "clean").items():
        assert value not in everything, f"{name} shown"
    assert "[redacted by scangate]" in "\n".join(requests_logged)  # its credential headers


def test_scangate_debug_true_logs_http_too(tmp_path: Path) -> None:
    run, _ = run_scenario(tmp_path, "vaddy", "clean", env={"SCANGATE_DEBUG": "true"})
    assert run.exit == 0, run.stderr
    assert any(REQUEST.match(line) for line in run.stderr.splitlines())
    assert any(RESPONSE.match(line) for line in run.stderr.splitlines())
    for value in sandbox_env("vaddy", "clean").values():
        assert value not in run.everything()


def test_without_debug_no_http_line_is_logged(tmp_path: Path) -> None:
    run, _ = run_scenario(tmp_path, "vaddy", "clean")
    assert run.exit == 0, run.stderr
    assert "debug: →" not in run.stderr and "debug: ←" not in run.stderr


def test_a_server_that_accepts_but_does_not_answer_is_named_slow_and_never_silent(
    tmp_path: Path,
) -> None:
    # Issue 17, item 3: the first status poll gets no answer for longer than the 30 s read
    # timeout. The log says so while it waits, names the read timeout when it gives up on the
    # attempt, retries the (idempotent) poll, and the run then ends as the scan does.
    released = threading.Event()
    held: list[LogEntry] = []

    def hold_first_poll(entry: LogEntry) -> None:
        if entry.category == "poll" and not held:
            held.append(entry)
            released.wait(40)

    try:
        with sandbox(PROVIDER, "findings", on_request=hold_first_poll) as server:
            port = server.port
            status, lines = run_timed(tmp_path, server.base_url)
    finally:
        released.set()
    said = "\n".join(text for _, text in lines)
    assert held, said
    assert status == 1, said  # the findings scenario fails the default gate, as without the hold
    waiting = [at for at, text in lines if "still waiting for an answer from" in text]
    assert waiting and 20.0 <= waiting[0] <= 45.0, said
    timed_out = [
        text
        for _, text in lines
        if f"(127.0.0.1:{port}) after 30.0 s (read timeout); attempt 2 of {ATTEMPTS}" in text
    ]
    assert len(timed_out) == 1, said
    assert "cannot reach" not in said  # it was reachable: slow, not down
    assert_no_long_silence(lines)
