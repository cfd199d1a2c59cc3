"""The emulator's view of HTTP: requests, responses, routing and the request log."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs


class BadRequest(ValueError):
    """A request's body or query is not what the handler expects; the message says why."""


class Rejected(Exception):
    """Carries an error response out of a handler's helpers."""

    def __init__(self, response: Response) -> None:
        """Create a new `Rejected` answering with `response`."""
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True, kw_only=True)
class Request:
    """One HTTP request as handlers see it."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header values by lower-case name."""
    header_names: tuple[str, ...] = ()
    """Header names as the client spelled them."""
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)
    """Named groups of the matched route pattern."""
    category: str = "other"
    """The matched route's category (`poll`, `start`, ...), which faults target."""

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), or None."""
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def int_arg(self, name: str, default: int, low: int = 0, high: int | None = None) -> int:
        """Query parameter `name` as an integer in [`low`, `high`]; `BadRequest` otherwise."""
        value = self.arg(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise BadRequest(f"{name}: not a valid integer") from None
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise BadRequest(f"{name}: must be {bounds}")
        return number

    def choice_arg(self, name: str, allowed: tuple[str, ...]) -> str | None:
        """Query parameter `name`, which must be one of `allowed` when present."""
        value = self.arg(name)
        if value is not None and value not in allowed:
            raise BadRequest(f"{name}: must be one of {', '.join(allowed)}")
        return value

    def date_arg(self, name: str) -> float | None:
        """Query parameter `name` as an ISO-8601 date or time (UTC unless it says), in Unix time."""
        value = self.arg(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{name}: not an ISO-8601 date") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters."""
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The JSON body; `BadRequest` when it is not JSON."""
        if self.content_type != "application/json" and not self.content_type.endswith("+json"):
            raise BadRequest(f"expected application/json, got {self.content_type or 'no body'}")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the body is not valid JSON") from None

    def form(self) -> dict[str, str]:
        """The form-encoded body (first value of each field); `BadRequest` when it is not a form."""
        if self.content_type != "application/x-www-form-urlencoded":
            raise BadRequest(f"expected a form, got {self.content_type or 'no body'}")
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in fields.items()}


@dataclass(frozen=True)
class Response:
    """One HTTP response; `body` is already encoded."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def with_headers(self, headers: Mapping[str, str]) -> Response:
        """A copy with `headers` added; a header the response already has is kept as it is."""
        names = {k.lower() for k, _ in self.headers}
        added = tuple((k, v) for k, v in headers.items() if k.lower() not in names)
        return replace(self, headers=self.headers + added)


def respond(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response (no body when `body` is None).

    Non-ASCII text is `\\u`-escaped so that even a lone surrogate (hostile scenarios) is valid JSON.
    """
    extra = tuple((headers or {}).items())
    if body is None:
        return Response(status, b"", extra)
    encoded = json.dumps(body, ensure_ascii=True).encode("ascii")
    return Response(status, encoded, (("Content-Type", "application/json"), *extra))


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """A handler for one method and path pattern (a regex with named groups, fully matched)."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    category: str | Callable[[Request], str]
    """The log category, or a function of the request for routes shared by several actions
    (VAddy starts and cancels with the same `POST /v2/scan`)."""

    def category_for(self, request: Request) -> str:
        """The category of `request` on this route."""
        return self.category if isinstance(self.category, str) else self.category(request)


class Router:
    """Routes requests to handlers; the first registered route that matches wins."""

    def __init__(self) -> None:
        """Create a new, empty `Router`."""
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        category: str | Callable[[Request], str] = "other",
    ) -> None:
        """Register `handler` for `method` on paths fully matching the regex `pattern`."""
        self.routes.append(Route(method.upper(), re.compile(pattern), handler, category))

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | int:
        """The route and path parameters for a request, or 404 / 405 when there is none."""
        status = 404
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method.upper():
                return route, found.groupdict()
            status = 405
        return status


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    """One request the emulator received, and what it answered."""

    time: float
    """The emulator clock's `monotonic()` when the request arrived."""
    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    """Query parameters; values of secret-looking names are replaced by `REDACTED`."""
    headers: Mapping[str, str]
    """Headers by lower-case name; credential values are replaced by `REDACTED`."""
    header_names: tuple[str, ...]
    authenticated: bool
    """The request carried a credential header (`Authorization`, `X-API-Key`, ...)."""
    body: bytes
    category: str
    status: int | None
    """The status sent, or None when the connection was dropped or left hanging."""
    fault: str | None
    """The kind of fault injected into this request, if any."""
    span: tuple[float, float] = (0.0, 0.0)
    """Real `time.perf_counter()` readings when serving began and when the answer was ready
    (latency included): whatever the emulator clock, they tell requests served at once apart
    from requests served one after another."""

    def json(self) -> Any:
        """The request body parsed as JSON."""
        return json.loads(self.body.decode("utf-8"))


class RequestLog:
    """Every request an emulator received, in order; safe to read while the server runs."""

    def __init__(self) -> None:
        """Create a new, empty `RequestLog`."""
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def append(self, entry: LogEntry) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        """A snapshot of all entries."""
        with self._lock:
            return list(self._entries)

    def find(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        category: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> list[LogEntry]:
        """Entries matching every criterion given; `path` is a regex fully matching the path."""
        pattern = re.compile(path) if path is not None else None
        return [
            e
            for e in self.entries()
            if (method is None or e.method == method.upper())
            and (pattern is None or pattern.fullmatch(e.path))
            and (category is None or e.category == category)
            and (status is None or e.status == status)
            and (fault is None or e.fault == fault)
        ]

    def count(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        category: str | None = None,
        status: int | None = None,
        fault: str | None = None,
    ) -> int:
        """How many entries `find` would return."""
        return len(self.find(method, path, category=category, status=status, fault=fault))

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """The number of entries."""
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        """Iterate over a snapshot."""
        return iter(self.entries())
