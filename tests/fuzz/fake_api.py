"""A fake provider API for `responses`: each route answers with fuzzed replies, in order.

Nothing leaves the process: `responses` intercepts every request of the real `HttpClient`.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import responses
from hypothesis import strategies as st

from .strategies import json_body

MAX_REQUESTS = 60
"""Requests one example may send; later ones get a bare 503, as from a server that gave up.

It bounds examples whose answers announce endless pages (each provider stops at its own page
limit too, but that can be thousands of requests)."""
ERROR_STATUSES = (201, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503)
"""Every status a provider maps, answered with a hostile error body (201/204: odd successes)."""
CONTENT_TYPES = ("application/json", "application/json", "text/html; charset=utf-8", "")
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
"""Header values as `http.client` decodes them: Latin-1 text without line breaks."""
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Route:
    """One endpoint of a provider: its valid answers and the error bodies it may send."""

    name: str
    method: str
    path: str
    """A regular expression for the path after the base URL."""
    answers: tuple[Any, ...]
    """Valid bodies (recorded payloads), one of which is damaged for each reply."""
    errors: tuple[Any, ...]
    """The provider's error bodies, damaged alike, sent with an error status."""
    headers: Mapping[str, st.SearchStrategy[str]] = field(default_factory=dict)
    """Headers the answer carries (CyStack's `Location`, NCP's `Date`), each drawn."""
    fill: Mapping[str, st.SearchStrategy[str]] = field(default_factory=dict)
    """String leaves replaced before damage (a JWT whose claims are fuzzed themselves)."""


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def _fill(value: Any, fills: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return fills.get(value, value)
    if isinstance(value, dict):
        return {key: _fill(item, fills) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, fills) for item in value]
    return value


@st.composite
def replies(draw: st.DrawFn, route: Route) -> Reply:
    """A fuzzed answer of `route`: mostly 200 and a damaged answer, else an error status."""
    failed = draw(st.integers(0, 9)) == 0
    status = draw(st.sampled_from(ERROR_STATUSES)) if failed else 200
    template = draw(st.sampled_from(route.errors if failed else route.answers))
    fills = {marker: draw(strategy) for marker, strategy in route.fill.items()}
    headers = {"Content-Type": draw(st.sampled_from(CONTENT_TYPES))}
    headers.update({name: draw(value) for name, value in route.headers.items()})
    return Reply(status, headers, draw(json_body(_fill(template, fills))))


class FakeApi:
    """Answers each request with the next reply of its route (the last one repeats)."""

    def __init__(
        self, base_url: str, routes: tuple[Route, ...], drawn: Mapping[str, list[Reply]]
    ) -> None:
        """Serve `drawn[route.name]` for the routes of `routes` under `base_url`."""
        self.base_url = base_url.rstrip("/")
        self.base_path = urlsplit(self.base_url).path + "/"
        self.routes = routes
        self.drawn = drawn
        self.calls: dict[str, int] = {}
        self.sent = 0
        self.unrouted: list[str] = []
        """Requests no drawn route matches: a gap in the test's route table."""
        self._lock = threading.Lock()  # CyStack fetches details from several threads

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        """The `responses` callback."""
        path = urlsplit(request.url or "").path
        relative = path.removeprefix(self.base_path)
        with self._lock:
            self.sent += 1
            if self.sent > MAX_REQUESTS:
                return 503, {}, b""
            route = self._route(request.method or "", relative)
            if route is None:
                self.unrouted.append(f"{request.method} {relative}")
                return 404, {}, b""
            count = self.calls.get(route.name, 0)
            self.calls[route.name] = count + 1
        answers = self.drawn[route.name]
        reply = answers[min(count, len(answers) - 1)]
        return reply.status, dict(reply.headers), reply.body

    def _route(self, method: str, relative: str) -> Route | None:
        for route in self.routes:
            if route.method == method and re.fullmatch(route.path, relative):
                return route if route.name in self.drawn else None
        return None

    @contextmanager
    def serving(self) -> Iterator[FakeApi]:
        """Intercept every request to the base URL while the block runs."""
        pattern = re.compile(re.escape(self.base_url) + "/")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            for method in METHODS:
                mock.add_callback(method, pattern, self)
            yield self


class Clock:
    """A wall clock that moves only when the client sleeps; it records every sleep."""

    def __init__(self, now: float) -> None:
        """Start at `now` (epoch seconds)."""
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        """The current fake time."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock on by it."""
        self.sleeps.append(seconds)
        if math.isfinite(seconds) and seconds > 0:
            self.now += seconds
