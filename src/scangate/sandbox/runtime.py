"""The provider-neutral emulator runtime: fault injection, the emulator base and the server."""

from __future__ import annotations

import re
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from types import MappingProxyType
from typing import ClassVar

from scangate.sandbox.clock import Clock, FakeClock, SystemClock
from scangate.sandbox.httpd import Outcome, QuietHTTPServer, RequestHandler, shutdown_fast
from scangate.sandbox.scenario import Fault, Scenario
from scangate.sandbox.wire import (
    BadRequest,
    Handler,
    LogEntry,
    Request,
    RequestLog,
    Response,
    Route,
    Router,
    respond,
)

__all__ = [
    "BadRequest",
    "Clock",
    "Emulator",
    "EmulatorServer",
    "FakeClock",
    "FaultInjector",
    "Handler",
    "LogEntry",
    "Request",
    "RequestLog",
    "Response",
    "Route",
    "Router",
    "SystemClock",
    "respond",
]

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"(?i)auth|key|token|secret|password|signature|cookie")
_AUTH_HEADERS = ("authorization", "x-api-key", "x-ncp-apigw-signature-v2")
_BEFORE_HANDLER = ("5xx", "429", "401", "token-expiry")
"""Fault kinds that answer instead of the emulator; the others act on its answer."""


class FaultInjector:
    """Decides which scenario fault, if any, hits each request (thread-safe)."""

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        """Create a new `FaultInjector` for `faults`, each with its own request counter."""
        self._lock = threading.Lock()
        self._faults = faults
        self._seen = [0] * len(faults)

    def next(self, category: str) -> Fault | None:
        """Count one request of `category` against every fault; return the first one due."""
        due: Fault | None = None
        with self._lock:
            for index, fault in enumerate(self._faults):
                if not fault.targets(category):
                    continue
                self._seen[index] += 1
                if due is None and fault.after < self._seen[index] <= fault.after + fault.count:
                    due = fault
        return due


class Emulator(ABC):
    """One provider's API over a scenario. Subclasses register routes and shape errors."""

    provider: ClassVar[str]
    """The provider's registry name."""
    prefix: ClassVar[str]
    """The path prefix `base_url` ends with (`/api/v1`)."""
    SANDBOX_ENV: ClassVar[Mapping[str, str]]
    """Credential variables the sandbox accepts (the default set)."""
    SANDBOX_LOGIN_ENV: ClassVar[Mapping[str, str] | None] = None
    """An alternative set that makes the client log in for tokens, when the provider has one."""

    def __init__(self, scenario: Scenario, *, clock: Clock | None = None) -> None:
        """Create a new emulator playing `scenario` on `clock` (the real clocks by default)."""
        self.scenario = scenario
        self.clock: Clock = clock or SystemClock()
        self.lock = threading.RLock()
        self.router = Router()
        self.register(self.router)

    @classmethod
    def sandbox_env(cls, scenario: Scenario | None = None) -> dict[str, str]:
        """Credentials for the sandbox; the login set when `scenario` exercises tokens."""
        if scenario is not None and scenario.uses_tokens and cls.SANDBOX_LOGIN_ENV is not None:
            return dict(cls.SANDBOX_LOGIN_ENV)
        return dict(cls.SANDBOX_ENV)

    @abstractmethod
    def register(self, router: Router) -> None:
        """Add this provider's routes to `router` (order matters: first match wins)."""

    @abstractmethod
    def error(self, status: int, detail: str, code: str) -> Response:
        """An error response in the provider's own shape."""

    def dispatch(self, route: Route, request: Request) -> Response:
        """Run `route`'s handler, one at a time; a `BadRequest` becomes a 400.

        Subclasses add rate limits or auth here.
        """
        with self.lock:
            try:
                return route.handler(request)
            except BadRequest as exc:
                return self.error(400, str(exc), "BAD_REQUEST")

    def finalize(self, request: Request, response: Response) -> Response:
        """Last touch on every response (e.g. rate-limit headers); default: unchanged."""
        return response

    def route_error(self, status: int, request: Request) -> Response:
        """The answer to a path no route matches (404) or a method it lacks (405)."""
        if status == 405:
            return self.error(405, "Method Not Allowed", "METHOD_NOT_ALLOWED")
        return self.error(404, "Not Found", "NOT_FOUND")

    def expire_credentials(self, request: Request) -> bool:
        """Expire the login token `request` used; False when it used none (API keys)."""
        return False

    def latency(self, request: Request) -> float:
        """Real seconds to hold `request`'s answer back (a network's delay); default none.

        The server waits them out after `dispatch` returns, outside `lock`, so that requests
        sent at once are delayed at once, as over a real network.
        """
        return 0.0

    def fault_response(self, fault: Fault, request: Request) -> Response | None:
        """The answer for a fault injected before the handler; None skips the fault."""
        if fault.kind == "5xx":
            return self.error(
                fault.status, "Service temporarily unavailable", "SERVICE_UNAVAILABLE"
            )
        if fault.kind == "429":
            return self.rate_limited(fault.retry_after)
        if fault.kind == "token-expiry" and not self.expire_credentials(request):
            return None
        detail = "Token has expired" if fault.kind == "token-expiry" else "Invalid credentials"
        code = "TOKEN_EXPIRED" if fault.kind == "token-expiry" else "INVALID_CREDENTIALS"
        return self.error(401, detail, code).with_headers({"WWW-Authenticate": "Bearer"})

    def rate_limited(self, retry_after: float) -> Response:
        """A 429 telling the client to wait `retry_after` seconds."""
        response = self.error(429, "Rate limit exceeded", "RATE_LIMIT_EXCEEDED")
        return response.with_headers({"Retry-After": _seconds(retry_after)})


TARGET_PREFIX = "/_target/"
"""Paths under which every emulator plays the scanned target's pages (its version page)."""

_RUNNING: dict[str, EmulatorServer] = {}
"""The servers running in this process, by `base_url` (`scangate.expect.sandbox_route`)."""
_RUNNING_LOCK = threading.Lock()


def running_root(base_url: str) -> str | None:
    """The root URL of the emulator running in this process at `base_url`, or None.

    `scan.expect` asks it, so that under `--sandbox` its request for a target on another host
    goes to the emulator's target pages instead of leaving the machine.
    """
    with _RUNNING_LOCK:
        server = _RUNNING.get(base_url.rstrip("/"))
    return server.root_url if server is not None else None


def _seconds(value: float) -> str:
    """Whole seconds for a `Retry-After` header (rounded up: never invite an early retry)."""
    return str(max(0, -int(-value // 1)))


class EmulatorServer:
    """Serves one emulator on 127.0.0.1 over real HTTP, logging every request."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        read_timeout: float | None = None,
        on_request: Callable[[LogEntry], None] | None = None,
    ) -> None:
        """Create a new `EmulatorServer` for `emulator` on `host`:`port` (0: any free port).

        `read_timeout` is the client's read timeout: only when it is given do `timeout` faults
        hang that long (plus a second); otherwise they are skipped. `on_request` sees every
        log entry (for a standalone server's access log).
        """
        self.emulator = emulator
        self.log = RequestLog()
        self.errors: list[str] = []
        """Tracebacks of handler crashes (each answered with a 500)."""
        self.read_timeout = read_timeout
        self.on_request = on_request
        self._faults = FaultInjector(emulator.scenario.faults)
        self._address = (host, port)
        self._httpd: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = 0.0
        self._running_key = ""

    @property
    def clock(self) -> Clock:
        """The emulator's clock."""
        return self.emulator.clock

    @property
    def port(self) -> int:
        """The bound port (after `start`)."""
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not running")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:PORT`, without the emulator's prefix."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL a client uses as the provider's `base_url` (root URL plus the prefix)."""
        return self.root_url + self.emulator.prefix

    def start(self) -> EmulatorServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = QuietHTTPServer(self._address, RequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"sandbox-{self.emulator.provider}",
            daemon=True,
        )
        self._thread.start()
        self._started = self.clock.monotonic()
        self._running_key = self.base_url.rstrip("/")
        with _RUNNING_LOCK:
            _RUNNING[self._running_key] = self
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and wait for the threads (1 s at most)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        with _RUNNING_LOCK:
            _RUNNING.pop(self._running_key, None)
        self._stopping.set()
        shutdown_fast(httpd, (self._address[0], int(httpd.server_address[1])))
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        httpd.join_handlers(timeout=1.0)

    def __enter__(self) -> EmulatorServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    def handle(self, request: Request, arrived: float) -> Outcome:
        """Route `request` through the fault injector and the emulator, and log it.

        `arrived` is the emulator clock's reading when the request came in.
        """
        began = time.perf_counter()
        if request.path.startswith(TARGET_PREFIX):
            request = replace(request, category="target")
            outcome = Outcome(self._target_page(request))
            self._record(request, outcome, arrived, (began, time.perf_counter()))
            return outcome
        match = self.emulator.router.resolve(request.method, request.path)
        if isinstance(match, int):
            request = replace(request, category="unrouted")
            answer = partial(self.emulator.route_error, match, request)
        else:
            route, params = match
            request = replace(request, params=MappingProxyType(params))
            request = replace(request, category=route.category_for(request))
            answer = partial(self.emulator.dispatch, route, request)
        outcome = self._apply(self._faults.next(request.category), request, answer)
        if outcome.response is not None:
            # Outside the emulator's lock (`dispatch` has returned): delays overlap.
            self.wait_stopping(self._guarded_latency(request))
        self._record(request, outcome, arrived, (began, time.perf_counter()))
        return outcome

    def _target_page(self, request: Request) -> Response:
        """The scanned target's version page: the scenario's `target_version`, after
        `version_after` seconds (`previous_version` before); 404 when the scenario has none."""
        scenario = self.emulator.scenario
        if request.method != "GET":
            return Response(405, b"method not allowed\n", (("Allow", "GET"),))
        if not scenario.target_version:
            return Response(404, b"not found\n", (("Content-Type", "text/plain"),))
        late = self.clock.monotonic() - self._started < scenario.version_after
        version = scenario.previous_version if late else scenario.target_version
        return respond(200, {"version": version, "service": "sandbox-target"})

    def _guarded_latency(self, request: Request) -> float:
        try:
            return max(0.0, self.emulator.latency(request))
        except Exception:  # an emulator bug must not cost the client its answer
            self.errors.append(traceback.format_exc())
            return 0.0

    def _apply(
        self, fault: Fault | None, request: Request, answer: Callable[[], Response]
    ) -> Outcome:
        if fault is not None and fault.kind == "timeout" and self.read_timeout is None:
            fault = None  # a hang only makes sense against a client with a known read timeout
        if fault is None:
            return Outcome(self._finish(request, self._guarded(answer)))
        if fault.kind in _BEFORE_HANDLER:
            early = self.emulator.fault_response(fault, request)
            if early is None:  # not applicable (e.g. token expiry with an API key)
                return Outcome(self._finish(request, self._guarded(answer)))
            return Outcome(self._finish(request, early), fault.kind)
        if fault.kind == "malformed":
            return Outcome(self._finish(request, _truncate(self._guarded(answer))), fault.kind)
        if fault.processed:
            self._guarded(answer)
        hang = (self.read_timeout or 0.0) + 1.0 if fault.kind == "timeout" else 0.0
        return Outcome(None, fault.kind, hang)

    def _guarded(self, answer: Callable[[], Response]) -> Response:
        try:
            return answer()
        except Exception:  # an emulator bug must answer 500, not kill the server
            self.errors.append(traceback.format_exc())
            return self.emulator.error(500, "Internal Server Error", "INTERNAL_ERROR")

    def _finish(self, request: Request, response: Response) -> Response:
        return self._guarded(lambda: self.emulator.finalize(request, response))

    def _record(
        self, request: Request, outcome: Outcome, arrived: float, span: tuple[float, float]
    ) -> None:
        entry = LogEntry(
            span=span,
            time=arrived,
            method=request.method,
            path=request.path,
            query=MappingProxyType(
                {
                    k: (REDACTED,) * len(v) if _SECRET_NAME.search(k) else v
                    for k, v in request.query.items()
                }
            ),
            headers=MappingProxyType(
                {k: REDACTED if _SECRET_NAME.search(k) else v for k, v in request.headers.items()}
            ),
            header_names=request.header_names,
            authenticated=any(name in request.headers for name in _AUTH_HEADERS),
            body=request.body,
            category=request.category,
            status=outcome.response.status if outcome.response is not None else None,
            fault=outcome.fault,
        )
        self.log.append(entry)
        if self.on_request is not None:
            self._guarded_callback(entry)

    def _guarded_callback(self, entry: LogEntry) -> None:
        assert self.on_request is not None
        try:
            self.on_request(entry)
        except Exception:  # a broken access-log callback must not cost the client its answer
            self.errors.append(traceback.format_exc())

    def too_large(self) -> Response:
        """The answer to a request body over `MAX_REQUEST_BYTES`."""
        return self.emulator.error(413, "Request body too large", "TOO_LARGE")

    def wait_stopping(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when the server stops."""
        self._stopping.wait(seconds)


def _truncate(response: Response) -> Response:
    """A `malformed` fault: status 200 and the first half of the JSON body."""
    body = response.body if response.body else b'{"detail": "'
    return Response(200, body[: max(1, len(body) // 2)], (("Content-Type", "application/json"),))
