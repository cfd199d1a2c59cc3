"""The transport under `HttpClient`: urllib3 retries bound to the run, and redirect safety."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError
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

    def new(self: _R, **kw: Any) -> _R:
        """See `urllib3.util.retry.Retry.new`; the hooks carry over."""
        made = super().new(**kw)
        made.pause, made.time_left, made.clock, made.rng = (
            self.pause,
            self.time_left,
            self.clock,
            self.rng,
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
        return super().increment(method, url, response, error, _pool, _stacktrace)


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
