"""One HTTP client for every provider: retries, timeouts, size caps, rate limits, error mapping."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from scangate import __version__
from scangate.errors import (
    AmbiguousStartError,
    ProviderAuthError,
    ProviderBusyError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.redact import Redactor

USER_AGENT = f"scangate/{__version__}"
DEFAULT_TIMEOUT = (10.0, 30.0)
"""(connect, read) seconds for every request."""
MAX_BODY_BYTES = 32 * 1024 * 1024
"""A response larger than this is refused: no scanner page is that big, a broken proxy may be."""
MAX_REDIRECTS = 5
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 86_400.0
"""The longest `Retry-After` hold honoured, in seconds."""
MAX_RESENDS = 100
"""Times one request is sent again after "not processed" answers (429, 503 + `Retry-After`),
beyond urllib3's own retries; the run's deadline normally ends the waiting long before."""
RESET_MARGIN = 1.0
"""Seconds added to `X-RateLimit-Reset`: our clock and the provider's may disagree a little."""
WAIT_SLICE = 25.0
"""Longest single sleep of a rate-limit wait while someone listens (`HttpClient.on_wait`)."""
_BODY_IN_ERRORS = 300
"""Characters of a response body quoted in an error message."""

ErrorDetail = Callable[[requests.Response, Any], str]
"""Extracts the provider's own error text from a failed response and its parsed body."""


class RefusalKind(Enum):
    """What a refused request means for sending it again."""

    RATE = "rate"
    """The request rate: wait (`Retry-After`, `X-RateLimit-Reset`, backoff) and send it again."""
    BUSY = "busy"
    """A plan limit that clears by itself (concurrent scans, starts a minute): queue the start."""
    FINAL = "final"
    """A limit that will not clear within the run (monthly quota, plan without API access)."""


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """A provider's reading of a refused request (`Provider.refusal`)."""

    kind: RefusalKind
    queue: str = ""
    """For `BUSY`: what the start waits for (`a free scan slot`)."""
    usage: str = ""
    """For `BUSY`: how full it is (`3 of 3 in use`)."""
    hint: str = ""
    """What to do about it, for the error message."""


RefusalHook = Callable[[requests.Response, Any], "Refusal | None"]
"""Reads a refused response and its parsed body; None: the default reading (`RATE` for a 429 or
a 503 with `Retry-After`, else a plain error)."""


def not_processed(status: int, headers: Mapping[str, str]) -> bool:
    """True for a 429, or a 503 with `Retry-After`: the server did nothing and says so.

    RFC 6585 §4 (429) and RFC 9110 §15.6.4 (503 with `Retry-After`): the request may be sent
    again once the wait is over, a scan start included.
    """
    return status == 429 or (status == 503 and "Retry-After" in headers)


def rate_wait(
    headers: Mapping[str, str],
    *,
    now: float,
    attempt: int,
    base: float,
    cap: float,
    rng: random.Random,
) -> tuple[float, str]:
    """Seconds to wait before sending a "not processed" request again, and why.

    In this order: `Retry-After`; else `X-RateLimit-Reset` when `X-RateLimit-Remaining` is 0 or
    absent (with requests left, the refusal is not about the window); else exponential backoff
    with full jitter, uniform in [0, min(`cap`, `base` x 2^`attempt`)] (AWS Architecture Blog,
    "Exponential Backoff And Jitter"), so that jobs refused together do not come back together.
    """
    fixed = header_wait(headers, now)
    if fixed is not None:
        return fixed
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 62))
    return rng.uniform(0.0, max(ceiling, 0.0)), "backoff"


def header_wait(headers: Mapping[str, str], now: float) -> tuple[float, str] | None:
    """The wait `Retry-After` or `X-RateLimit-Reset` asks for (see `rate_wait`), or None."""
    if "Retry-After" in headers:
        until = parse_retry_after(headers["Retry-After"], now)
        if until is not None:
            return max(0.0, until - now), "Retry-After"
    remaining = _header_int(headers, "X-RateLimit-Remaining")
    reset = _header_int(headers, "X-RateLimit-Reset")
    if reset is not None and (remaining is None or remaining <= 0):
        # A small value is "seconds from now", a large one a Unix time (as `_note_headers`).
        at = float(reset) if reset > 1_000_000_000 else now + reset
        if at > now:  # a reset already past is stale: the backoff applies
            return min(at - now + RESET_MARGIN, MAX_RETRY_AFTER), "X-RateLimit-Reset"
    return None


def _default_detail(response: requests.Response, body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("detail", "error_message", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, Mapping) and isinstance(value.get("message"), str):
                return str(value["message"])
    return response.text[:_BODY_IN_ERRORS].strip()


class _UnsafeRedirect(requests.exceptions.RequestException):
    """A redirect would resend a request body (a password, a scan) to another host."""


class _Session(requests.Session):
    """A session that drops every secret header on a redirect to another host.

    A 307/308 redirect keeps the method and the body; to another host that body (a login form
    with the password, a scan request) is not resent at all: `_UnsafeRedirect` is raised.
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
                raise _UnsafeRedirect(f"redirected with its body to {new.netloc}")


def _never_sent(exc: Exception) -> bool:
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


class _BoundedRetry(Retry):
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

    def new(self, **kw: Any) -> Self:
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
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        """See `urllib3.util.retry.Retry.increment`."""
        if response is not None:
            wait = self._fixed_wait(response)
            left = self.time_left() if self.time_left is not None else math.inf
            if wait is not None and (wait > self.backoff_max or wait > left):
                raise MaxRetryError(_pool, url or "", None)  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


class _StartRetry(_BoundedRetry):
    """The start session's retry: only a 429 or 503 that carries `Retry-After` is sent again.

    Such an answer is definite (nothing was done), so a start is safe to resend; a 429 without
    one goes back to `HttpClient.request`, where the provider's `refusal` reading decides
    (a plan's monthly quota is a 429 too, and must not be resent).
    """

    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})


@dataclass
class RateStats:
    """What rate limits cost one client: answers refused, requests resent, seconds waited."""

    limited: int = 0
    """429 answers received (urllib3's retries included)."""
    resent: int = 0
    """Requests sent again after a "not processed" answer."""
    waited: float = 0.0
    """Seconds slept out waiting for a rate limit (`Retry-After`, reset, backoff)."""


@dataclass
class RateLimitState:
    """What the provider last said about its request budget (`X-RateLimit-*`, `Retry-After`)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    """Wall-clock epoch seconds when the window resets."""
    hold_until: float = 0.0
    """Wall-clock epoch seconds before which no request may be sent (`Retry-After`)."""


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        value = float(headers[name])
    except (KeyError, ValueError):
        return None
    return int(value) if math.isfinite(value) else None  # `1e309` is inf: no number


def parse_retry_after(value: str, now: float) -> float | None:
    """Return the epoch time a `Retry-After` header (seconds or HTTP date) points at.

    A hold longer than `MAX_RETRY_AFTER` is cut to it: `time.sleep` refuses more than about
    292 years (OverflowError), and no provider asks for more than a day.
    """
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return now + min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        return min(parsedate_to_datetime(value).timestamp(), now + MAX_RETRY_AFTER)
    except (TypeError, ValueError, OverflowError):
        return None


class HttpClient:
    """Sends a provider's requests; every failure becomes a `ProviderError` with a diagnosis."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        redactor: Redactor,
        credential_hint: str,
        verify: bool | str = True,
        secret_headers: Iterable[str] = ("Authorization", "X-API-Key"),
        error_detail: ErrorDetail = _default_detail,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_body: int = MAX_BODY_BYTES,
        time_left: Callable[[], float] | None = None,
        refusal: RefusalHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Create a new `HttpClient` for `provider` at `base_url`.

        `credential_hint` names the credential variables for 401/403 diagnoses. Idempotent
        methods are retried `retries` times on connection errors, read timeouts, 429 and 5xx
        (urllib3 `Retry`, honouring `Retry-After`); other methods only when the connection
        was never made, or after a definite "not processed" answer (429, 503 + `Retry-After`).
        Bodies over `max_body` bytes are refused.

        `time_left` gives the seconds left of the run's deadline: with it, a request answered
        429 (or 503 + `Retry-After`) is sent again after the wait `rate_wait` picks, for as long
        as the deadline allows; without it, such an answer is an error once urllib3's retries
        are spent. `refusal` reads the provider's refusals (`Provider.refusal`); `rng` draws
        the backoff jitter.
        """
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.redact = redactor
        self.credential_hint = credential_hint
        self.error_detail = error_detail
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.max_body = max_body
        self.clock = clock
        self.sleep = sleep
        self.rate = RateLimitState()
        self.requests_sent = 0
        self.time_left = time_left
        self.refusal = refusal
        self.rng = rng or random.Random()
        self.stats = RateStats()
        self.on_wait: Callable[[float, str], None] | None = None
        """Told (seconds left, why) before each slice of a rate-limit wait, for the log."""
        self._lock = threading.Lock()
        self.default_headers: dict[str, str] = {}
        self.on_unauthorized: Callable[[], bool] | None = None
        """Set by a provider whose tokens expire: called on a 401, it renews the credentials
        in `default_headers` and returns True, and the request is then sent once more."""
        self._idempotent = self._session(
            verify,
            secret_headers,
            self._hooked(
                _BoundedRetry(
                    total=retries,
                    connect=retries,
                    read=retries,
                    status=retries,
                    other=0,
                    allowed_methods=None,
                    status_forcelist=RETRY_STATUSES,
                    backoff_factor=backoff,
                    backoff_max=backoff_max,
                    respect_retry_after_header=True,
                    raise_on_status=False,
                    raise_on_redirect=False,
                )
            ),
        )
        # A create/start request is never retried once it may have reached the server: only
        # connection failures (nothing sent) and definite "not processed" answers (429 or 503
        # with `Retry-After`) are; a lost answer is for the runner to look into.
        self._once = self._session(
            verify,
            secret_headers,
            self._hooked(
                _StartRetry(
                    total=retries,
                    connect=retries,
                    read=0,
                    status=retries,
                    other=0,
                    allowed_methods=None,
                    status_forcelist=(),
                    backoff_factor=backoff,
                    backoff_max=backoff_max,
                    respect_retry_after_header=True,
                    raise_on_status=False,
                    raise_on_redirect=False,
                )
            ),
        )

    def _hooked(self, retry: _BoundedRetry) -> _BoundedRetry:
        """`retry` with this client's pause, deadline, clock and jitter source."""
        retry.pause = self._pause
        retry.time_left = lambda: self.time_left() if self.time_left is not None else math.inf
        retry.clock = lambda: self.clock()
        retry.rng = self.rng
        return retry

    @staticmethod
    def _session(verify: bool | str, secret_headers: Iterable[str], retry: Retry) -> _Session:
        session = _Session()
        session.secret_headers = tuple(secret_headers)
        session.verify = verify
        session.max_redirects = MAX_REDIRECTS
        session.trust_env = True
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def url(self, path: str) -> str:
        """Join `path` to the base URL; an absolute URL must stay on the base URL's host."""
        if "://" not in path:
            return self.base_url + "/" + path.lstrip("/")
        target = urlsplit(urljoin(self.base_url + "/", path))
        base = urlsplit(self.base_url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise UnexpectedResponseError(
                f"{self.provider} pointed to another host ({target.netloc}); not following it"
            )
        return target.geturl()

    def _hold(self, creates: bool = False) -> None:
        """Wait out a `Retry-After` the provider gave (design §9 "Faults").

        A hold longer than `backoff_max` that would outlast the run's deadline is not waited
        out: nothing is sent, and the caller learns when the provider will take requests again.
        """
        wait = self.rate.hold_until - self.clock()
        if wait <= 0:
            return
        left = self.time_left() if self.time_left is not None else math.inf
        if wait > self.backoff_max and wait > left:
            raise ProviderBusyError(
                f"{self.provider} asked to wait {wait:.0f} s (Retry-After) before any request, "
                f"past what is left of scan.timeout ({max(left, 0.0):.0f} s)",
                hint="the plan's request budget is spent; wait for it to reset, raise "
                "scan.timeout, or run fewer jobs on this account at once",
                queue=f"{self.provider}'s request rate limit",
                retry_after=wait,
                start_refused=creates,  # not even sent
            )
        self._pause(wait, "Retry-After")

    def _pause(self, seconds: float, why: str) -> None:
        """Sleep out a rate-limit wait; with `on_wait` set, in slices it is told about."""
        if seconds <= 0:
            return
        left = seconds
        while left > 0:
            step = min(left, WAIT_SLICE) if self.on_wait is not None else left
            if self.on_wait is not None:
                self.on_wait(left, why)
            self.sleep(step)
            left -= step
        with self._lock:
            self.stats.waited += seconds

    def _note_headers(self, response: requests.Response) -> None:
        headers = response.headers
        with self._lock:
            limit = _header_int(headers, "X-RateLimit-Limit")
            remaining = _header_int(headers, "X-RateLimit-Remaining")
            reset = _header_int(headers, "X-RateLimit-Reset")
            if limit is not None:
                self.rate.limit = limit
            if remaining is not None:
                self.rate.remaining = remaining
            if reset is not None:
                # A small value is "seconds from now", a large one a Unix time.
                self.rate.reset_at = reset if reset > 1_000_000_000 else self.clock() + reset
            if "Retry-After" in headers:
                until = parse_retry_after(headers["Retry-After"], self.clock())
                if until is not None:
                    self.rate.hold_until = max(self.rate.hold_until, until)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        creates: bool = False,
        idempotent: bool | None = None,
        accept_status: Iterable[int] = (),
        reauth: bool = True,
    ) -> requests.Response:
        """Send one request and return the response, or raise a `ProviderError`.

        `creates` marks a request that creates something (a scan): it is never retried once
        it may have been sent, and a lost answer raises `AmbiguousStartError`.
        `idempotent` overrides the method's default (a search sent as POST is safe to retry).
        `accept_status` lists non-2xx statuses the caller handles itself.
        `reauth=False` skips `on_unauthorized` (for the login and refresh calls themselves).
        """
        accepted = frozenset(accept_status)
        options = {"params": params, "json": json_body, "data": data, "headers": headers}
        response = self._send(method, path, creates, idempotent, options)
        if response.status_code == 401 and 401 not in accepted and reauth:
            # A 401 means the request was refused, so even a creating one may be sent again.
            if self.on_unauthorized is not None and self.on_unauthorized():
                response = self._send(method, path, creates, idempotent, options)
        late: float | None = None
        for resends in range(MAX_RESENDS):
            if response.ok or response.status_code in accepted:
                return response
            if not not_processed(response.status_code, response.headers):
                break
            wait, late = self._resend_wait(response, resends)
            if wait is None:
                break
            self._pause(
                wait[0],
                f"{wait[1]}; HTTP {response.status_code} on {method.upper()} "
                f"{urlsplit(response.url).path}",
            )
            with self._lock:
                self.stats.resent += 1
            # Definite: nothing was done, so even a creating request may go again.
            response = self._send(method, path, creates, idempotent, options)
        if response.ok or response.status_code in accepted:
            return response
        raise self.status_error(response, creates, late=late)

    def _resend_wait(
        self, response: requests.Response, resends: int
    ) -> tuple[tuple[float, str] | None, float | None]:
        """How long to wait before sending a "not processed" request again (None: do not).

        The second value is the wait that was asked for when it outlasts the deadline.
        """
        refusal = self.read_refusal(response)
        if self.time_left is None or (refusal is not None and refusal.kind is not RefusalKind.RATE):
            return None, None
        wait, why = rate_wait(
            response.headers,
            now=self.clock(),
            attempt=resends,
            base=max(self.backoff, 0.0),
            cap=self.backoff_max,
            rng=self.rng,
        )
        left = self.time_left()
        if why == "backoff":
            wait = min(wait, left)  # a guess: one more try at the deadline is worth it
        if left <= 0 or wait > left:
            return None, wait
        return (wait, why), None

    def read_refusal(self, response: requests.Response) -> Refusal | None:
        """The provider's reading of a refused `response` (`Provider.refusal`), if it has one."""
        if self.refusal is None:
            return None
        try:
            body: Any = response.json()
        except (ValueError, RecursionError):
            body = None
        return self.refusal(response, body)

    def _send(
        self,
        method: str,
        path: str,
        creates: bool,
        idempotent: bool | None,
        options: Mapping[str, Any],
    ) -> requests.Response:
        """Send one request (with the session's retries); map transport failures to errors.

        `options` holds `request()`'s `params`, `json`, `data` and `headers`.
        """
        self._hold(creates)
        url = self.url(path)
        session = (
            self._idempotent if self._is_idempotent(method, creates, idempotent) else self._once
        )
        merged = {**self.default_headers, **(options["headers"] or {})}
        try:
            response = session.request(
                method,
                url,
                params=options["params"],
                json=options["json"],
                data=options["data"],
                headers=merged,
                timeout=self.timeout,
                stream=True,
            )
            self._read_capped(response)
        except requests.exceptions.ConnectionError as exc:
            raise self._connection_error(method, url, exc, creates) from None
        except requests.exceptions.Timeout as exc:
            raise self._connection_error(method, url, exc, creates) from None
        except requests.exceptions.TooManyRedirects:
            raise ProviderError(
                f"{self.provider}: more than {MAX_REDIRECTS} redirects for {self.redact(url)}"
            ) from None
        except _UnsafeRedirect as exc:
            raise ProviderError(
                f"{self.provider}: {method.upper()} {urlsplit(url).path} was {exc}; "
                "not sending it there",
                hint="set provider.base_url to the address the provider redirects to",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise ProviderUnavailableError(
                f"{self.provider}: request failed: {self.redact(str(exc))}"
            ) from None
        finally:
            with self._lock:
                self.requests_sent += 1
        with self._lock:
            # Retries urllib3 made inside the call count against the provider's budget too.
            retries = getattr(response.raw, "retries", None)
            history = getattr(retries, "history", ()) or ()
            self.requests_sent += len(history)
            limited = sum(1 for entry in history if entry.status == 429)
            self.stats.limited += limited + (response.status_code == 429)
            self.stats.resent += limited
        self._note_headers(response)
        return response

    @staticmethod
    def _is_idempotent(method: str, creates: bool, idempotent: bool | None) -> bool:
        if creates:
            return False
        if idempotent is not None:
            return idempotent
        return method.upper() not in ("POST", "PATCH")

    def _read_capped(self, response: requests.Response) -> None:
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_body:
                response.close()
                raise UnexpectedResponseError(
                    f"{self.provider}: response over {self.max_body:,} bytes refused"
                )
            chunks.append(chunk)
        response._content = b"".join(chunks)  # noqa: SLF001 - requests' own cache of the body

    def _connection_error(
        self, method: str, url: str, exc: Exception, creates: bool
    ) -> ProviderError:
        host = urlsplit(url).netloc
        reason = self.redact(type(exc).__name__)
        if creates and not _never_sent(exc):
            return AmbiguousStartError(
                f"{self.provider}: the start request to {host} got no answer ({reason})"
            )
        hint = "check the network and provider.base_url; the provider may be down"
        if isinstance(exc, requests.exceptions.SSLError):
            hint = "TLS failed; for a private CA set provider.verify_tls to its bundle path"
        return ProviderUnavailableError(
            f"{self.provider}: cannot reach {host} ({reason}) after {self.retries} retries",
            hint=hint,
        )

    def status_error(
        self, response: requests.Response, creates: bool = False, *, late: float | None = None
    ) -> ProviderError:
        """Map a failed response to the right `ProviderError` with the provider's own words.

        The provider's `refusal` reading comes first: a plan limit that clears by itself is a
        `ProviderBusyError` (the runner queues the start on it), one that does not is a
        `ProviderRateLimitError` with its diagnosis. `late` is the wait a "not processed"
        answer asked for that outlasts the deadline (`ProviderBusyError` too).
        """
        status = response.status_code
        try:
            body: Any = response.json()
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
            body = None
        detail = self.redact(" ".join(self.error_detail(response, body).split())[:_BODY_IN_ERRORS])
        where = f"{response.request.method} {urlsplit(response.url).path}"
        said = f": {detail}" if detail else ""
        refusal = self.read_refusal(response)
        if refusal is not None and refusal.kind is RefusalKind.BUSY:
            return ProviderBusyError(
                f"{self.provider} is at a plan limit (HTTP {status} on {where}){said}",
                hint=refusal.hint or "it clears when the provider's other scans end",
                queue=refusal.queue or "a free scan slot",
                usage=refusal.usage,
                start_refused=creates,
            )
        if refusal is not None and refusal.kind is RefusalKind.FINAL:
            return ProviderRateLimitError(
                f"{self.provider} refused: a plan limit is used up (HTTP {status} on {where})"
                + said,
                hint=refusal.hint or "wait for the plan's quota to reset, or upgrade the plan",
            )
        if late is not None and not_processed(status, response.headers):
            return ProviderBusyError(
                f"{self.provider} rate limit exceeded (HTTP {status} on {where}){said}; it asks "
                f"to wait {late:.0f} s, past what is left of scan.timeout",
                hint="the plan's request budget is spent; wait for it to reset, raise "
                "scan.timeout, or run fewer jobs on this account at once",
                queue=f"{self.provider}'s request rate limit",
                retry_after=late,
                start_refused=creates,
            )
        if status in (401, 403):
            verb = "rejected the credentials" if status == 401 else "refused access"
            return ProviderAuthError(
                f"{self.provider} {verb} (HTTP {status} on {where}){said}",
                hint=f"check {self.credential_hint}",
            )
        if status == 429:
            return ProviderRateLimitError(
                f"{self.provider} rate limit exceeded (HTTP 429 on {where}){said}",
                hint="wait for the quota to reset, or lower the request rate",
            )
        if creates and not_processed(status, response.headers):
            # A 503 with `Retry-After` is definite, even for a start: nothing was created.
            return ProviderUnavailableError(
                f"{self.provider} is unavailable (HTTP {status} on {where}){said}",
                hint="the provider asked to come back later; try again then",
            )
        if creates and status >= 500:
            return AmbiguousStartError(f"{self.provider}: start failed with HTTP {status}{said}")
        return ProviderError(f"{self.provider} API error (HTTP {status} on {where}){said}")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and parse its JSON body.

        A malformed body on an idempotent request is retried like a 5xx (design §9 "Faults");
        on a creating request it is an ambiguous start.
        """
        creates = bool(kwargs.get("creates"))
        idempotent = self._is_idempotent(method, creates, kwargs.get("idempotent"))
        attempts = self.retries + 1 if idempotent else 1
        for attempt in range(attempts):
            response = self.request(method, path, **kwargs)
            try:
                return json.loads(response.content.decode("utf-8")) if response.content else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                if attempt + 1 < attempts:
                    self.sleep(min(self.backoff * 2**attempt, self.backoff_max))
        where = f"{method.upper()} {urlsplit(self.url(path)).path}"
        if creates:
            raise AmbiguousStartError(f"{self.provider}: the start answer was not JSON ({where})")
        raise UnexpectedResponseError(
            f"{self.provider} returned malformed JSON for {where}"
            + (f" {attempts} times" if attempts > 1 else "")
        )
