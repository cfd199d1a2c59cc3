"""The transport under `HttpClient`: urllib3 retries bound to the run, and redirect safety."""

from __future__ import annotations

import http.client
import math
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.retry import Retry

from scangate import __version__
from scangate.ratelimit import header_wait, not_processed, rate_wait

USER_AGENT = f"scangate/{__version__}"
MAX_REDIRECTS = 5
RETRY_STATUSES = (429, 500, 502, 503, 504)
POOL_SIZE = 10
"""Connections kept open to the provider: at least the page readers that run at once
(`providers.paging.PAGE_WORKERS`), or urllib3 discards the extra ones ("Connection pool is
full") and every request past the pool opens a new TCP (and TLS) connection."""

_R = TypeVar("_R", bound="BoundedRetry")


class UnsafeRedirect(requests.exceptions.RequestException):
    """A redirect would resend a request body (a password, a scan) to another host."""


class SecretSession(requests.Session):
    """A session that drops every secret header on a redirect to another host.

    A 307/308 redirect keeps the method and the body; to another host that body (a login form
    with the password, a scan request) is not resent at all: `UnsafeRedirect` is raised.
    """

    secret_headers: tuple[str, ...] = ()

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        old = urlsplit(response.request.url or "")
        new = urlsplit(prepared_request.url or "")
        if (old.hostname, old.port, old.scheme) != (new.hostname, new.port, new.scheme):
            for name in self.secret_headers:
                prepared_request.headers.pop(name, None)
            if prepared_request.body is not None:
                raise UnsafeRedirect(f"redirected with its body to {new.netloc}")


def session(verify: bool | str, secret_headers: Iterable[str], retry: Retry) -> SecretSession:
    """A session for one provider: its TLS setting, secret headers, retries and our headers."""
    made = SecretSession()
    made.secret_headers = tuple(secret_headers)
    made.verify = verify
    made.max_redirects = MAX_REDIRECTS
    made.trust_env = True
    made.headers["User-Agent"] = USER_AGENT
    made.headers["Accept"] = "application/json"
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=POOL_SIZE)
    made.mount("https://", adapter)
    made.mount("http://", adapter)
    return made


def never_sent(exc: Exception) -> bool:
    """True when a failed request provably never reached the server.

    No connection was made (refused, unresolvable, connect timeout), or the proxy or the TLS
    handshake failed before the request was written.
    """
    never = (
        requests.exceptions.ConnectTimeout,
        requests.exceptions.SSLError,
        requests.exceptions.ProxyError,
    )
    if isinstance(exc, never):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


class Cause(Enum):
    """Why a request got no answer: each has its own diagnosis (`HttpClient` words it)."""

    DNS = "name does not resolve"
    REFUSED = "connection refused"
    TLS = "TLS failure"
    CONNECT_TIMEOUT = "connect timeout"
    READ_TIMEOUT = "read timeout"
    NO_CONNECTION = "no connection"
    """The connection could not be made for another reason (network unreachable, ...)."""
    DROPPED = "connection dropped"
    """The server closed or reset the connection before its answer."""
    LOST = "connection lost"
    """Anything else: the connection dropped, was reset, or an unknown transport failure."""


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps, outermost first.

    requests and urllib3 wrap the cause in `args[0]` (requests' `ConnectionError` holds
    urllib3's `MaxRetryError`) and in `.reason` (`MaxRetryError`), besides `__cause__`.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        first = current.args[0] if current.args else None
        inner = (reason, first, current.__cause__, current.__context__)
        pending.extend(each for each in inner if isinstance(each, BaseException))


def cause_of(exc: BaseException) -> Cause:
    """The `Cause` of a transport failure, read from the types in its exception chain.

    The order matters: in urllib3 2 `NameResolutionError` is a `NewConnectionError`, which is
    a `ConnectTimeoutError`, so the most specific cause is looked for first.
    """
    chain = list(exception_chain(exc))

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(each, kinds) for each in chain)

    if has(NameResolutionError, socket.gaierror):
        return Cause.DNS
    if has(ConnectionRefusedError):
        return Cause.REFUSED
    if has(ssl.SSLError, Urllib3SSLError, requests.exceptions.SSLError):
        return Cause.TLS
    if has(NewConnectionError):
        return Cause.NO_CONNECTION
    if has(ConnectTimeoutError, requests.exceptions.ConnectTimeout):
        return Cause.CONNECT_TIMEOUT
    if has(ReadTimeoutError, requests.exceptions.ReadTimeout):
        return Cause.READ_TIMEOUT
    if has(ProtocolError, http.client.RemoteDisconnected, ConnectionResetError):
        return Cause.DROPPED
    return Cause.LOST


def certificate_problem(exc: BaseException) -> str | None:
    """What is wrong with the server's certificate (`self-signed certificate`), or None.

    `ssl.SSLCertVerificationError.verify_message` is OpenSSL's own reason; a certificate that
    fails verification fails it again, so such an error is not worth a retry.
    """
    for each in exception_chain(exc):
        if isinstance(each, ssl.SSLCertVerificationError):
            return str(each.verify_message or each.reason or "certificate verify failed")
    return None


def innermost(exc: BaseException) -> BaseException:
    """The deepest exception `exc` wraps (the OS's or OpenSSL's own error, usually)."""
    return list(exception_chain(exc))[-1]


def elapsed_text(seconds: float) -> str:
    """`0.4 s`, `7.2 s`, `2m31s`: an attempt or a request's time, to a tenth below a minute."""
    if seconds < 59.95:
        return f"{max(seconds, 0.0):.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _seconds(value: float) -> str:
    return f"{value:g} s"


def failure_words(exc: BaseException, host: str, timeout: tuple[float, float]) -> str:
    """What went wrong with a request to `host` that got no answer, for the final error.

    `timeout` is the (connect, read) timeout of each attempt. `cannot reach` starts every
    diagnosis where no connection was made: scripts and older tests look for it.
    """
    cause = cause_of(exc)
    if cause is Cause.REFUSED:
        return f"cannot reach {host}: nothing listens there (connection refused)"
    if cause is Cause.DNS:
        name = urlsplit(f"//{host}").hostname or host
        return f"cannot reach {host}: the name {name} does not resolve (DNS failure)"
    if cause is Cause.CONNECT_TIMEOUT:
        return f"cannot reach {host}: no connection within {_seconds(timeout[0])} (connect timeout)"
    if cause is Cause.TLS:
        problem = certificate_problem(exc)
        said = f"certificate verify failed: {problem}" if problem else "the TLS handshake failed"
        return f"TLS with {host} failed: {said}"
    if cause is Cause.READ_TIMEOUT:
        return (
            f"{host} accepted the connection but sent no answer within "
            f"{_seconds(timeout[1])} (ReadTimeout)"
        )
    deepest = innermost(exc)
    if cause is Cause.DROPPED:
        return f"{host} closed the connection without an answer ({type(deepest).__name__})"
    if cause is Cause.NO_CONNECTION and isinstance(deepest, OSError) and deepest.strerror:
        return f"cannot reach {host}: {deepest.strerror.lower()} ({type(deepest).__name__})"
    return f"cannot reach {host}: the connection failed ({type(deepest).__name__})"


def attempt_words(exc: BaseException, where: str, after: float) -> str:
    """What one failed attempt on `where` (`cyberorigen (127.0.0.1:18999)`) met, for the log."""
    cause = cause_of(exc)
    took = elapsed_text(after)
    if cause is Cause.READ_TIMEOUT:
        return f"no answer from {where} after {took} (read timeout)"
    if cause is Cause.CONNECT_TIMEOUT:
        return f"no connection to {where} after {took} (connect timeout)"
    if cause is Cause.REFUSED:
        return f"{where} refused the connection (nothing listens there)"
    if cause is Cause.DNS:
        return f"{where}: the name does not resolve (DNS failure)"
    if cause is Cause.TLS:
        return f"TLS with {where} failed after {took}"
    if cause is Cause.DROPPED:
        name = type(innermost(exc)).__name__
        return f"{where} closed the connection without an answer after {took} ({name})"
    return f"the connection to {where} failed after {took} ({type(innermost(exc)).__name__})"


def failure_hint(exc: BaseException) -> str:
    """What to do about a request that got no answer."""
    cause = cause_of(exc)
    if cause is Cause.TLS and certificate_problem(exc) is not None:
        return (
            "the server's certificate is not trusted; for a private CA set provider.verify_tls "
            "to its CA bundle (a PEM file, relative to the policy) or REQUESTS_CA_BUNDLE; "
            "verify_tls: false only for a test"
        )
    return _HINTS[cause]


_HINTS = {
    Cause.REFUSED: "check the host and port in provider.base_url; is the service up?",
    Cause.DNS: "check the host name in provider.base_url; on a CI runner, check its DNS and "
    "proxy settings (HTTPS_PROXY, NO_PROXY)",
    Cause.CONNECT_TIMEOUT: "something drops the connection (a firewall, a wrong address, a "
    "proxy that must be set); check provider.base_url and HTTPS_PROXY / NO_PROXY",
    Cause.TLS: "TLS failed: check that provider.base_url's port speaks HTTPS and no proxy "
    "interferes; for a private CA set provider.verify_tls to its bundle path",
    Cause.READ_TIMEOUT: "the provider is reachable but slow or stuck; try again later, or "
    "check the provider's status page",
    Cause.NO_CONNECTION: "check the network and provider.base_url; the provider may be down",
    Cause.DROPPED: "the provider or a proxy on the way dropped the connection; it may be "
    "overloaded or restarting: try again later",
    Cause.LOST: "check the network and provider.base_url; the provider may be down",
}


FailureHook = Callable[[Exception, "BoundedRetry | None"], None]
"""Told of each failed attempt (connect or read error): the error, and the retry that follows
(None: no attempt is left, the request fails)."""


class BoundedRetry(Retry):
    """urllib3 `Retry` that gives a response back when its wait exceeds `backoff_max`.

    urllib3 would sleep out any `Retry-After` (hours, on a plan quota) inside one call, deaf to
    the run's deadline and heartbeat. Handing the 429/503 back instead records `hold_until`;
    `HttpClient.request` (or the poll loop) then waits for it within the deadline (design §5).
    A wait it does take for a "not processed" answer follows `rate_wait` (full jitter without
    headers) and goes through `pause`, so that it is logged, counted and deadline-bound.
    """

    pause: Callable[[float, str], None] | None = None
    """Sleeps out a rate-limit wait (`HttpClient._pause`); None: `time.sleep`."""
    time_left: Callable[[], float] | None = None
    """Seconds left before the run's deadline; None: no deadline."""
    clock: Callable[[], float] = time.time
    rng: random.Random = random.Random()
    on_failure: FailureHook | None = None
    """Told of each failed connect or read (`HttpClient` logs the retry line); urllib3's
    `Retry` has no callback of its own, `increment` is where every failure passes."""

    def new(self: _R, **kw: Any) -> _R:
        """See `urllib3.util.retry.Retry.new`; the hooks carry over."""
        made = super().new(**kw)
        made.pause, made.time_left, made.clock, made.rng, made.on_failure = (
            self.pause,
            self.time_left,
            self.clock,
            self.rng,
            self.on_failure,
        )
        return made

    def _fixed_wait(self, response: BaseHTTPResponse) -> float | None:
        """The wait a "not processed" answer's headers ask for, or None (backoff applies)."""
        if not not_processed(response.status, response.headers):
            return self.get_retry_after(response)
        fixed = header_wait(response.headers, self.clock())
        return None if fixed is None else fixed[0]

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """See `urllib3.util.retry.Retry.sleep`: a 429 waits as `rate_wait` says."""
        if response is None or not not_processed(response.status, response.headers):
            super().sleep(response)
            return
        limited = sum(1 for h in self.history if h.status == 429)
        wait, why = rate_wait(
            response.headers,
            now=self.clock(),
            attempt=limited - 1,
            base=self.backoff_factor,
            cap=self.backoff_max,
            rng=self.rng,
        )
        if self.time_left is not None:
            wait = min(wait, max(0.0, self.time_left()))
        if wait <= 0:
            return
        if self.pause is None:
            time.sleep(wait)
        else:
            self.pause(wait, f"{why}; HTTP {response.status}")

    def increment(
        self: _R,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> _R:
        """See `urllib3.util.retry.Retry.increment`."""
        if response is not None:
            wait = self._fixed_wait(response)
            left = self.time_left() if self.time_left is not None else math.inf
            if wait is not None and (wait > self.backoff_max or wait > left):
                raise MaxRetryError(_pool, url or "", None)  # type: ignore[arg-type]
        if error is None:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        try:
            if certificate_problem(error) is not None:
                # A certificate that failed verification fails it again: no retry.
                raise MaxRetryError(_pool, url or "", error)  # type: ignore[arg-type]
            following = super().increment(method, url, response, error, _pool, _stacktrace)
        except Exception:  # MaxRetryError, or urllib3 re-raising `error` itself
            self._tell(error, None)
            raise
        self._tell(error, following)
        return following

    def _tell(self, error: Exception, following: BoundedRetry | None) -> None:
        if self.on_failure is not None:
            self.on_failure(error, following)


class StartRetry(BoundedRetry):
    """The start session's retry: only a 429 or 503 that carries `Retry-After` is sent again.

    Such an answer is definite (nothing was done), so a start is safe to resend; a 429 without
    one goes back to `HttpClient.request`, where the provider's `refusal` reading decides
    (a plan's monthly quota is a 429 too, and must not be resent).
    """

    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})


def retry_for(*, starts: bool, retries: int, backoff: float, backoff_max: float) -> BoundedRetry:
    """The urllib3 retry of the idempotent session, or (`starts`) of the start session.

    A create/start request is never retried once it may have reached the server: only
    connection failures (nothing sent) and definite "not processed" answers (429 or 503 with
    `Retry-After`) are; a lost answer is for the runner to look into.
    """
    kind = StartRetry if starts else BoundedRetry
    return kind(
        total=retries,
        connect=retries,
        read=0 if starts else retries,
        status=retries,
        other=0,
        allowed_methods=None,
        status_forcelist=() if starts else RETRY_STATUSES,
        backoff_factor=backoff,
        backoff_max=backoff_max,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
