"""One HTTP client for every provider: retries, timeouts, size caps, rate limits, error mapping.

What the client needs from a provider (its credentials on each request, the headers never sent
to another host, how to read its error bodies and refusals, what to do on a 401) is one
`HttpContract`, given at construction; where and how to connect is one `Connection`.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests

from scangate.errors import (
    AmbiguousStartError,
    ProviderAuthError,
    ProviderBusyError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.http_retry import (
    MAX_REDIRECTS,
    BoundedRetry,
    UnsafeRedirect,
    attempt_words,
    elapsed_text,
    failure_hint,
    failure_words,
    never_sent,
    retry_for,
    session,
)
from scangate.ratelimit import (
    RateLimitState,
    RateStats,
    not_processed,
    rate_wait,
)
from scangate.redact import Redactor, masked_headers, masked_url

LOG = logging.getLogger("scangate.http")
"""Retry and waiting lines (WARNING: the console shows them without --debug) and, under
--debug, one line per request and per response (session.py `_route_logging`)."""

DEFAULT_TIMEOUT = (10.0, 30.0)
"""(connect, read) seconds for every request."""
MAX_BODY_BYTES = 32 * 1024 * 1024
"""A response larger than this is refused: no scanner page is that big, a broken proxy may be."""
MAX_RESENDS = 100
"""Times one request is sent again after "not processed" answers (429, 503 + `Retry-After`),
beyond urllib3's own retries; the run's deadline normally ends the waiting long before."""
WAIT_SLICE = 5.0
"""Longest single sleep of a rate-limit wait while someone listens (`HttpClient.watch`): the
listener (the runner's `_rate_line`) prints at most one line per 25 s, so it must be asked
often enough that its lines come no more than 30 s apart (issue 17)."""
LINE_EVERY = 25.0
"""A request waiting for its answer says so at least this often: a CI log silent for minutes
looks hung (issue 17)."""
BODY_IN_ERRORS = 300
"""Characters of a response body quoted in an error message."""

T = TypeVar("T")

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

    @classmethod
    def busy(cls, *, queue: str, usage: str, hint: str) -> Refusal:
        """A plan limit that clears by itself: the start waits for `queue`."""
        return cls(kind=RefusalKind.BUSY, queue=queue, usage=usage, hint=hint)

    @classmethod
    def final(cls, hint: str) -> Refusal:
        """A limit that will not clear within the run."""
        return cls(kind=RefusalKind.FINAL, hint=hint)


RefusalHook = Callable[[requests.Response, Any], "Refusal | None"]
"""Reads a refused response and its parsed body; None: the default reading (`RATE` for a 429 or
a 503 with `Retry-After`, else a plain error)."""


def default_detail(response: requests.Response, body: Any) -> str:
    """The error text of a generic JSON API (`detail`, `message`, ...), else the body's start."""
    if isinstance(body, Mapping):
        for key in ("detail", "error_message", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, Mapping) and isinstance(value.get("message"), str):
                return str(value["message"])
    return response.text[:BODY_IN_ERRORS].strip()


def no_credentials(method: str, url: str) -> Mapping[str, str]:
    """`HttpContract.authorize` of an API without credentials in headers."""
    return {}


@dataclass(frozen=True, kw_only=True)
class HttpContract:
    """Everything the HTTP layer needs from one provider (`Provider.http_contract` builds it)."""

    provider: str
    """The name in error messages (`cyberorigen`)."""
    credential_hint: str
    """The credential variables a 401/403 diagnosis names."""
    secret_headers: tuple[str, ...] = ("Authorization", "X-API-Key")
    """Headers never sent on to another host after a redirect."""
    error_detail: ErrorDetail = default_detail
    refusal: RefusalHook | None = None
    """Reads the provider's refusals (`Provider.refusal`)."""
    authorize: Callable[[str, str], Mapping[str, str]] = no_credentials
    """The credential headers (a key, a token, a signature) of one request, by method and URL;
    asked again for every send, so that a renewed token or a fresh timestamp is used."""
    renew: Callable[[], bool] | None = None
    """Called on a 401: renews expired credentials and returns True to send the request once
    more (None: a 401 is final)."""


@dataclass(frozen=True, kw_only=True)
class Connection:
    """Where a provider is and how its client behaves: the run decides these, not the adapter."""

    base_url: str
    redactor: Redactor
    verify: bool | str = True
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 30.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    max_body: int = MAX_BODY_BYTES
    rng: random.Random | None = field(default=None, compare=False)
    line_every: float = LINE_EVERY
    """Seconds between "still waiting for an answer" lines of one request."""


@dataclass(frozen=True)
class TryAgain:
    """An answer worth sending a read again for (malformed JSON, a vendor's "temporary")."""

    error: ProviderError
    """Raised when no attempt is left."""


@dataclass
class _Exchange:
    """One request in flight, urllib3's retries included: for diagnoses and progress lines."""

    method: str
    url: str
    began: float
    """`time.monotonic()` when it was first sent."""
    attempt_began: float
    attempts: int = 1
    last_line: float = 0.0
    """When a line last told of this request (retry, still waiting, rate-limit wait)."""
    pausing: bool = False
    """In a rate-limit wait: its lines are `_pause`'s, not "still waiting for an answer"."""

    def __post_init__(self) -> None:
        self.last_line = self.began

    def elapsed(self) -> float:
        return time.monotonic() - self.began


class _StillWaiting:
    """Logs a line every `every` s while one request has an answer outstanding and
    nothing else has told of it (a single read timeout may be longer than that)."""

    def __init__(self, exchange: _Exchange, say: Callable[[_Exchange], None], every: float) -> None:
        self.exchange = exchange
        self.say = say
        self.every = every
        self._lock = threading.Lock()
        self._stopped = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _StillWaiting:
        self._arm(self.every)
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()

    def _arm(self, delay: float) -> None:
        with self._lock:
            if self._stopped:
                return
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        exchange = self.exchange
        with self._lock:
            quiet = time.monotonic() - exchange.last_line
            due = not self._stopped and not exchange.pausing and quiet >= self.every * 0.99
            if due:
                exchange.last_line = time.monotonic()
        if due:
            self.say(exchange)
        self._arm(max(self.every - (time.monotonic() - exchange.last_line), self.every / 100))


def size_text(size: int) -> str:
    """`512 B`, `1.2 kB`, `3.4 MB`: a body's size in a debug line."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def json_body(response: requests.Response) -> Any:
    """The parsed body of `response`; None when it is not JSON."""
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
        return None


class HttpClient:
    """Sends a provider's requests; every failure becomes a `ProviderError` with a diagnosis."""

    def __init__(
        self,
        connection: Connection,
        contract: HttpContract,
        *,
        time_left: Callable[[], float] | None = None,
    ) -> None:
        """Create a new `HttpClient` for `contract.provider` over `connection`.

        Idempotent methods are retried `connection.retries` times on connection errors, read
        timeouts, 429 and 5xx (urllib3 `Retry`, honouring `Retry-After`); other methods only
        when the connection was never made, or after a definite "not processed" answer (429,
        503 + `Retry-After`). Bodies over `connection.max_body` bytes are refused.

        `time_left` gives the seconds left of the run's deadline (see `watch`).
        """
        self.contract = contract
        self.provider = contract.provider
        self.base_url = connection.base_url.rstrip("/")
        self.redact = connection.redactor
        self.timeout = connection.timeout
        self.retries = connection.retries
        self.backoff = connection.backoff
        self.backoff_max = connection.backoff_max
        self.max_body = connection.max_body
        self.verify = connection.verify
        self.line_every = connection.line_every
        self.clock = connection.clock
        self.sleep = connection.sleep
        self.rng = connection.rng or random.Random()
        # Page reads run in a few threads at once (`providers.paging.read_pages`): the rate
        # state, the counters and the stats change only under `_lock`.
        self.rate = RateLimitState()
        self.requests_sent = 0
        self.stats = RateStats()
        self.time_left = time_left
        self.on_wait: Callable[[float, str], None] | None = None
        self._lock = threading.Lock()
        # The request each thread has in flight (page readers run several at once).
        self._current = threading.local()
        self._idempotent = self._session(connection, starts=False)
        self._once = self._session(connection, starts=True)

    def watch(
        self,
        *,
        time_left: Callable[[], float] | None,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> None:
        """Bind the client to a run: its deadline, and who hears about rate-limit waits.

        With `time_left`, a request answered 429 (or 503 + `Retry-After`) is sent again after
        the wait `rate_wait` picks, for as long as the deadline allows; without it, such an
        answer is an error once urllib3's retries are spent. `on_wait` is told (seconds left,
        why) before each slice of a rate-limit wait, for the log.
        """
        self.time_left = time_left
        self.on_wait = on_wait

    def _session(self, connection: Connection, *, starts: bool) -> requests.Session:
        retry = retry_for(
            starts=starts,
            retries=connection.retries,
            backoff=connection.backoff,
            backoff_max=connection.backoff_max,
        )
        # The retry's pause, deadline, clock and jitter are this client's.
        retry.pause = self._pause
        retry.time_left = lambda: self.time_left() if self.time_left is not None else math.inf
        retry.clock = lambda: self.clock()
        retry.rng = self.rng
        retry.on_failure = self._attempt_failed
        return session(connection.verify, self.contract.secret_headers, retry)

    def _exchange(self) -> _Exchange | None:
        """The request this thread has in flight, if any."""
        current: _Exchange | None = getattr(self._current, "exchange", None)
        return current

    def _where(self, url: str) -> str:
        """`cyberorigen (127.0.0.1:18999)`: who a line is about."""
        return f"{self.provider} ({urlsplit(url).netloc})"

    def _attempt_failed(self, error: Exception, following: BoundedRetry | None) -> None:
        """`BoundedRetry.on_failure`: count the attempt; when another follows, log a line."""
        exchange = self._exchange()
        if exchange is None or following is None:
            return
        now = time.monotonic()
        backoff = following.get_backoff_time()
        total = self.retries + 1
        exchange.attempts += 1
        LOG.warning(
            "%s; attempt %d of %d in %s",
            self.redact(
                attempt_words(error, self._where(exchange.url), now - exchange.attempt_began)
            ),
            exchange.attempts,
            total,
            elapsed_text(backoff),
        )
        exchange.last_line = now
        exchange.attempt_began = now + backoff

    def _still_waiting(self, exchange: _Exchange) -> None:
        """`_StillWaiting`'s line: the request is sent, its answer is outstanding."""
        LOG.warning(
            "still waiting for an answer from %s: %s %s sent %s ago (attempt %d of %d)",
            self._where(exchange.url),
            exchange.method.upper(),
            urlsplit(exchange.url).path,
            elapsed_text(exchange.elapsed()),
            exchange.attempts,
            self.retries + 1,
        )

    def hold_lifted(self) -> float:
        """Forget a `Retry-After` hold for one urgent request; returns it for `restore_hold`."""
        with self._lock:
            held, self.rate.hold_until = self.rate.hold_until, 0.0
        return held

    def restore_hold(self, held: float) -> None:
        """Put back a hold `hold_lifted` took (or the one answered since, if later)."""
        with self._lock:
            self.rate.hold_until = max(held, self.rate.hold_until)

    def retry_reads(
        self,
        exchange: Callable[[], T | TryAgain],
        *,
        read: bool,
        again: Callable[[ProviderError], None] | None = None,
    ) -> T:
        """`exchange()`, sent again like a 5xx while it answers `TryAgain` (reads only).

        A read gets `retries` more attempts with exponential backoff (design §9 "Faults");
        `again` hears of each retried failure; the last one's error is raised.
        """
        attempts = self.retries + 1 if read else 1
        for attempt in range(attempts):
            outcome = exchange()
            if not isinstance(outcome, TryAgain):
                return outcome
            if attempt + 1 >= attempts:
                raise outcome.error
            if again is not None:
                again(outcome.error)
            self.sleep(min(self.backoff * 2**attempt, self.backoff_max))
        raise AssertionError("unreachable")

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
        with self._lock:
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
        """Sleep out a rate-limit wait: with `on_wait` set, in slices it is told about; without,
        in one sleep after a log line (a wait is never silent)."""
        if seconds <= 0:
            return
        exchange = self._exchange()
        if exchange is not None:
            exchange.pausing = True
        try:
            self._sleep_in_slices(seconds, why)
        finally:
            if exchange is not None:
                exchange.pausing = False
                exchange.last_line = time.monotonic()
        with self._lock:
            self.stats.waited += seconds

    def _sleep_in_slices(self, seconds: float, why: str) -> None:
        listener = self.on_wait
        if listener is None:
            # Nobody bound to a run listens (`watch`): one line, then the whole wait. Outside a
            # run the waits are short (urllib3 hands back any over `backoff_max`).
            if seconds > 1:  # sub-second backoffs are not worth a line
                LOG.warning(
                    "waiting %s for %s (%s)", elapsed_text(seconds), self.provider, self.redact(why)
                )
            self.sleep(seconds)
            return
        left = seconds
        while left > 0:
            step = min(left, WAIT_SLICE)
            listener(left, why)
            self.sleep(step)
            left -= step

    def _note_headers(self, response: requests.Response) -> None:
        with self._lock:
            window = (self.rate.limit, self.rate.reset_at)
            before = self.rate.remaining
            self.rate.note(response.headers, self.clock())
            if (
                before is not None
                and self.rate.remaining is not None
                and window[1] is not None
                and window == (self.rate.limit, self.rate.reset_at)
            ):
                # Within one window the count only falls; with requests running at once an
                # older answer can arrive last, and must not hand back budget already spent.
                self.rate.remaining = min(before, self.rate.remaining)

    def rate_state(self) -> RateLimitState:
        """A consistent copy of what the provider last said about its budget (any thread)."""
        with self._lock:
            return replace(self.rate)

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
            if self.contract.renew is not None and self.contract.renew():
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
        if self.contract.refusal is None:
            return None
        return self.contract.refusal(response, json_body(response))

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
        merged = {**self.contract.authorize(method, url), **(options["headers"] or {})}
        began = time.monotonic()
        exchange = _Exchange(method, url, began=began, attempt_began=began)
        self._current.exchange = exchange
        self._log_request(method, url, options["params"], merged)
        try:
            with _StillWaiting(exchange, self._still_waiting, self.line_every):
                response = session.request(
                    method,
                    url,
                    params=options["params"],
                    json=options["json"],
                    data=options["data"],
                    headers=merged,
                    timeout=self.timeout,
                    # Per request: requests lets REQUESTS_CA_BUNDLE override a session's own
                    # `verify` (psf/requests#4650, #3829); verify_tls must win.
                    verify=self.verify,
                    stream=True,
                )
                self._read_capped(response)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise self._connection_error(exchange, exc, creates) from None
        except requests.exceptions.TooManyRedirects:
            raise ProviderError(
                f"{self.provider}: more than {MAX_REDIRECTS} redirects for {self.redact(url)}"
            ) from None
        except UnsafeRedirect as exc:
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
            self._current.exchange = None
            with self._lock:
                self.requests_sent += 1
        self._log_response(response, time.monotonic() - began)
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

    def _log_request(
        self, method: str, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str]
    ) -> None:
        """`→ GET https://host/path?key=[redacted by scangate]` under --debug (no body)."""
        if not LOG.isEnabledFor(logging.DEBUG):
            return
        prepared = requests.models.PreparedRequest()
        prepared.prepare_url(url, params)
        shown = masked_headers(headers, self.contract.secret_headers)
        extra = " [" + ", ".join(f"{k}: {v}" for k, v in shown.items()) + "]" if shown else ""
        line = f"→ {method.upper()} {masked_url(prepared.url or url)}{extra}"
        LOG.debug("%s", self.redact(line))

    def _log_response(self, response: requests.Response, seconds: float) -> None:
        """`← 200 OK 1.2 kB in 85 ms` under --debug (the size, never the body)."""
        if not LOG.isEnabledFor(logging.DEBUG):
            return
        retries = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
        again = f" after {len(retries)} retr{'ies' if len(retries) > 1 else 'y'}" if retries else ""
        LOG.debug(
            "← %d %s %s in %d ms%s",
            response.status_code,
            self.redact(response.reason or ""),
            size_text(len(response.content)),
            round(seconds * 1000),
            again,
        )

    def _connection_error(
        self, exchange: _Exchange, exc: Exception, creates: bool
    ) -> ProviderError:
        """The diagnosis of a request that got no answer: what failed, attempts and time."""
        host = urlsplit(exchange.url).netloc
        what = self.redact(failure_words(exc, host, self.timeout))
        if creates and not never_sent(exc):
            return AmbiguousStartError(f"{self.provider}: the start request got no answer: {what}")
        count = exchange.attempts
        tries = f"{count} attempt{'s' if count != 1 else ''} in {elapsed_text(exchange.elapsed())}"
        return ProviderUnavailableError(
            f"{self.provider}: {what} — after {tries}", hint=failure_hint(exc)
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
        body = json_body(response)
        detail = self.redact(
            " ".join(self.contract.error_detail(response, body).split())[:BODY_IN_ERRORS]
        )
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
                hint=f"check {self.contract.credential_hint}",
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
        read = self._is_idempotent(method, creates, kwargs.get("idempotent"))
        attempts = self.retries + 1 if read else 1

        def exchange() -> Any:
            response = self.request(method, path, **kwargs)
            try:
                return json.loads(response.content.decode("utf-8")) if response.content else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                where = f"{method.upper()} {urlsplit(self.url(path)).path}"
                if creates:
                    return TryAgain(
                        AmbiguousStartError(
                            f"{self.provider}: the start answer was not JSON ({where})"
                        )
                    )
                return TryAgain(
                    UnexpectedResponseError(
                        f"{self.provider} returned malformed JSON for {where}"
                        + (f" {attempts} times" if attempts > 1 else "")
                    )
                )

        return self.retry_reads(exchange, read=read)
