"""The five providers as the fuzz tests drive them: routes, recorded answers and operations.

Answers are the payloads in `tests/assets/<provider>/` (the shapes printed in
`providers/*.md`), with ids made consistent so that an undamaged answer leads each operation
down its longest path (a target that resolves, a scan list item of that target, ...).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from scangate.errors import ProviderError
from scangate.http import Connection, HttpClient
from scangate.model import ScanId, ScanStatus
from scangate.policy import ProviderSettings
from scangate.providers import Provider, ScanProgress, ScanRef, StartAttempt, provider_class
from scangate.redact import Redactor

from .fake_api import HEADER_TEXT, Clock, Route
from .strategies import HUGE_TEXT, SHORT_TEXT, json_body

ASSETS = Path(__file__).resolve().parent.parent / "assets"
NOW = 1_768_471_200.0
"""The fake wall clock: 2026-01-15 10:00:00Z."""
SENT = datetime(2026, 1, 15, 9, 59, 0, tzinfo=UTC)
"""When the start attempts were sent."""
MARKER = "scangate-0123456789abcdef"

Op = Callable[[Provider, "ScanProgress | None"], object]
"""One provider operation; `fetch` takes the state to fetch in (None: the polled one)."""

PROGRESSES = (
    ScanProgress(status=ScanStatus.COMPLETED, raw_status="done"),
    ScanProgress(status=ScanStatus.COMPLETED, raw_status="done", completeness=40),
    ScanProgress(status=ScanStatus.FAILED, raw_status="failed", completeness=0, message="x"),
    ScanProgress(status=ScanStatus.CANCELLED, raw_status="Stopped", completeness=10),
    ScanProgress(status=ScanStatus.TIMED_OUT, raw_status="running", completeness=0),
    ScanProgress(status=ScanStatus.INTERRUPTED, raw_status="running", completeness=0),
)
"""States a scan may end in when the runner fetches its result."""


def asset(provider: str, name: str) -> Any:
    """A recorded payload from `tests/assets/<provider>/` (a fresh copy)."""
    path = ASSETS / provider / name
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Spec:
    """How to build one provider, its routes, and the routes each operation reads."""

    name: str
    envs: tuple[Mapping[str, str], ...]
    """Credential sets; the first is an API key, a second one logs in."""
    routes: tuple[Route, ...]
    ops: Mapping[str, tuple[Op, tuple[str, ...]]]
    options: Mapping[str, Any] = field(default_factory=dict)
    login_routes: tuple[str, ...] = ()
    """Routes any operation may call when the credentials are a login (token renewal)."""

    def route(self, name: str) -> Route:
        """The route called `name`."""
        return next(route for route in self.routes if route.name == name)

    def routes_of(self, op: str, env: Mapping[str, str]) -> tuple[str, ...]:
        """The routes `op` reads with the credentials `env`."""
        login = self.login_routes if env is not self.envs[0] else ()
        return self.ops[op][1] + login

    def build(self, env: Mapping[str, str]) -> tuple[Provider, HttpClient, Clock]:
        """The provider on a real `HttpClient` wired as `wiring` wires it, on a fake clock."""
        cls = provider_class(self.name)
        clock = Clock(NOW)
        connection = Connection(
            base_url=cls.DEFAULT_BASE_URL,
            redactor=Redactor(),
            backoff=0,
            clock=clock,
            sleep=clock.sleep,
        )
        settings = ProviderSettings(name=self.name, options=dict(self.options))
        provider = cls(settings=settings, env=env, connection=connection)
        return provider, provider.http, clock


def attempt(target: str, marker: str = MARKER) -> StartAttempt:
    """A start attempt sent a minute before the fake clock's now."""
    return StartAttempt(target=target, marker=marker, sent_at=SENT)


def fetch_op(scan: ScanRef) -> Op:
    """Poll once (some providers keep what the poll read), then fetch in the given state."""

    def run(provider: Provider, state: ScanProgress | None) -> object:
        polled: ScanProgress | None = None
        try:
            polled = provider.poll(scan)
        except ProviderError:
            pass
        return provider.fetch(scan, state or polled or PROGRESSES[0])

    return run


def outcome_of(call: Callable[[], object]) -> object:
    """`call()`, or the `ProviderError` it raised."""
    try:
        return call()
    except ProviderError as exc:
        return exc


def jwt(claims: bytes) -> str:
    """An access token whose claims segment is `claims` (no one checks the signature here)."""
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    return f"{head}.{body}.c2lnbmF0dXJl"


TOKEN = "__token__"
JWT = st.one_of(
    json_body({"sub": "ci@example.com", "exp": NOW + 3600, "iat": NOW}).map(jwt),
    SHORT_TEXT,
    HUGE_TEXT,
)
"""Access tokens whose claims (read for `exp`) are fuzzed, or no JWT at all."""


def cystack() -> Spec:
    """CyStack (`providers/cystack.md`): targets by address, scans by href, details by id."""
    base = provider_class("cystack").DEFAULT_BASE_URL
    target_id = "599fc347-3e46-4163-8a1d-444bd1928a85"
    scan_id = "65fa9150-fbca-49ce-bac6-586e58cd36f5"
    targets = asset("cystack", "targets.json")
    scans, detail = asset("cystack", "scans_list.json"), asset("cystack", "scan_detail.json")
    scans["results"][0]["target"]["id"] = detail["target"]["id"] = target_id
    scans["results"][0]["status"] = "Running"
    detail["description"] = MARKER
    errors = tuple(
        asset("cystack", f"error_{n}.json") for n in ("fields", "not_found", "throttled")
    )
    location = st.one_of(
        st.sampled_from((f"{base}/scans/{scan_id}", f"/v1/scans/{scan_id}")), HEADER_TEXT
    )
    vuln = asset("cystack", "vulnerability.json")
    routes = (
        Route("targets", "GET", "targets", (targets,), errors),
        Route("target", "GET", "targets/[^/]+", (targets["results"][0],), errors),
        Route("stop", "GET", "scans/[^/]+/stop", ({},), errors),
        Route("scans", "GET", "scans", (scans,), errors),
        Route("scan", "GET", "scans/[^/]+", (detail,), errors),
        Route("vuln", "GET", "vulnerabilities/[^/]+", (vuln,), errors),
        Route("start", "POST", "scans", ({}, {"detail": "ok"}), errors, {"Location": location}),
    )
    target = "https://cystack.net"
    scan = ScanRef(scan_id=ScanId(scan_id), target=target, extra={"address": target})
    ops: dict[str, tuple[Op, tuple[str, ...]]] = {
        "find_running": (lambda p, _: p.find_running(target), ("targets", "scans")),
        "find_running_by_id": (lambda p, _: p.find_running(target_id), ("target", "scans")),
        "known_scans": (lambda p, _: p.known_scans(target), ("targets", "scans")),
        "find_started": (
            lambda p, _: p.find_started(attempt(target)),
            ("targets", "scans", "scan"),
        ),
        "start": (lambda p, _: p.start(attempt(target)), ("targets", "start")),
        "poll": (lambda p, _: p.poll(scan), ("scan",)),
        "fetch": (fetch_op(scan), ("scan", "vuln")),
        "cancel": (lambda p, _: p.cancel(scan, None), ("stop",)),
    }
    env = {"CYSTACK_API_KEY": "cs_live_8d7c6b5a4f3e2d1c0b9a"}
    return Spec("cystack", (env,), routes, ops)


def _both(stem: str) -> tuple[Any, Any]:
    """CyberSec Pro's documented [S0] and implemented [R] shape of one answer."""
    return (
        asset("cybersecpro", f"{stem}_documented.json"),
        asset("cybersecpro", f"{stem}_implementation.json"),
    )


def cybersecpro() -> Spec:
    """CyberSec Pro (`providers/cybersecpro.md`): two shapes of most answers, JWT login."""
    errors = (
        asset("cybersecpro", "error_not_found.json"),
        asset("cybersecpro", "error_rate_limited.json"),
    )
    login = {**asset("cybersecpro", "login_implementation.json"), "access_token": TOKEN}
    login["refresh_token"] = TOKEN
    tokens = (login, {"access_token": TOKEN}, asset("cybersecpro", "login_mfa.json"))
    detail = asset("cybersecpro", "scan_detail.json")
    routes = (
        Route("login", "POST", "auth/login", tokens, errors, fill={TOKEN: JWT}),
        Route("refresh", "POST", "auth/refresh", tokens, errors, fill={TOKEN: JWT}),
        Route("list", "GET", "scans", _both("list"), errors),
        Route("create", "POST", "scans/create", _both("create"), errors),
        Route("cancel", "POST", "scans/[^/]+/cancel", ({"message": "cancelled"},), errors),
        Route("detail", "GET", "scans/[^/]+", (detail,), errors),
        Route("result", "GET", "scan/[^/]+/result", _both("result"), errors),
    )
    target = "example.com"
    scan = ScanRef(scan_id=ScanId("scan_a1b2c3d4"), target=target)
    ops: dict[str, tuple[Op, tuple[str, ...]]] = {
        "find_running": (lambda p, _: p.find_running(target), ("list",)),
        "known_scans": (lambda p, _: p.known_scans(target), ("list",)),
        "find_started": (lambda p, _: p.find_started(attempt(target)), ("list",)),
        "start": (lambda p, _: p.start(attempt(target)), ("create",)),
        "poll": (lambda p, _: p.poll(scan), ("detail",)),
        "fetch": (fetch_op(scan), ("detail", "result")),
        "cancel": (lambda p, _: p.cancel(scan, None), ("cancel",)),
    }
    envs = (
        {"CYBERSECPRO_API_KEY": "csp_live_0123456789abcdef"},
        {"CYBERSECPRO_EMAIL": "ci@example.com", "CYBERSECPRO_PASSWORD": "correct-horse-battery"},
    )
    return Spec("cybersecpro", envs, routes, ops, login_routes=("login", "refresh"))


def cyberorigen() -> Spec:
    """CyberOrigen (`providers/cyberorigen.md`): paged lists and findings, token login."""
    fastapi = {"detail": [{"loc": ["body", "target"], "msg": "field required", "type": "x"}]}
    errors = (
        asset("cyberorigen", "error_not_found.json"),
        asset("cyberorigen", "error_rate_limited.json"),
        fastapi,
    )
    states = ("running", "completed", "created")
    scans = tuple(asset("cyberorigen", f"scan_{state}.json") for state in states)
    cancelled, token = asset("cyberorigen", "cancelled.json"), asset("cyberorigen", "token.json")
    findings = asset("cyberorigen", "findings.json")
    routes = (
        Route("token", "POST", "auth/token", (token,), errors),
        Route("refresh", "POST", "auth/refresh", (token,), errors),
        Route("quota", "GET", "scans/quota", (asset("cyberorigen", "quota.json"),), errors),
        Route("list", "GET", "scans", (asset("cyberorigen", "scans_list.json"),), errors),
        Route("create", "POST", "scans", (asset("cyberorigen", "scan_created.json"),), errors),
        Route("findings", "GET", "scans/[^/]+/findings", (findings,), errors),
        Route("scan", "GET", "scans/[^/]+", (*scans, cancelled), errors),
        Route("delete", "DELETE", "scans/[^/]+", (cancelled,), errors),
    )
    target = "example.com"
    scan = ScanRef(scan_id=ScanId("scan_abc123"), target=target, extra={"estimated_duration": "9"})
    ops: dict[str, tuple[Op, tuple[str, ...]]] = {
        "preflight": (lambda p, _: p.preflight(target), ("quota",)),
        "find_running": (lambda p, _: p.find_running(target), ("list",)),
        "known_scans": (lambda p, _: p.known_scans(target), ("list",)),
        "find_started": (lambda p, _: p.find_started(attempt(target)), ("list",)),
        "start": (lambda p, _: p.start(attempt(target)), ("create",)),
        "poll": (lambda p, _: p.poll(scan), ("scan",)),
        "fetch": (fetch_op(scan), ("scan", "findings")),
        "cancel": (lambda p, _: p.cancel(scan, None), ("delete",)),
    }
    envs = (
        {"CYBERORIGEN_API_KEY": "co_live_0123456789abcdef"},
        {"CYBERORIGEN_USERNAME": "ci@example.com", "CYBERORIGEN_PASSWORD": "correct-horse"},
    )
    return Spec("cyberorigen", envs, routes, ops, login_routes=("token", "refresh"))


def vaddy() -> Spec:
    """VAddy (`providers/vaddy.md`): runcheck, form-posted starts, count-only results."""
    names = ("already_finished", "busy", "no_crawl", "project", "scan_id", "scan_type")
    errors = tuple(asset("vaddy", f"error_{name}.json") for name in names)
    results = tuple(asset("vaddy", f"result_{s}.json") for s in ("finish", "scanning", "canceled"))
    runchecks = (asset("vaddy", "runcheck_busy.json"), asset("vaddy", "runcheck_free.json"))
    routes = (
        Route("crawl", "GET", "crawl", (asset("vaddy", "crawl_search.json"),), errors),
        Route("runcheck", "GET", "scan/runcheck", runchecks, errors),
        Route("post", "POST", "scan", (asset("vaddy", "start.json"), {}), errors),
        Route("result", "GET", "scan/result", results, errors),
    )
    project = "6eb1f9fcbdb6a5a"
    scan = ScanRef(scan_id=ScanId("1-837b5f9f-e088-4af5-9491-67f7ce8035a4"), target=project)
    unnamed = ScanRef(scan_id=ScanId("(unnamed)"), target=project, extra={"runcheck": "1"})
    ops: dict[str, tuple[Op, tuple[str, ...]]] = {
        "preflight": (lambda p, _: p.preflight(project), ("crawl",)),
        "find_running": (lambda p, _: p.find_running(project), ("runcheck",)),
        "find_started": (lambda p, _: p.find_started(attempt(project)), ("runcheck",)),
        "start": (lambda p, _: p.start(attempt(project)), ("post",)),
        "poll": (lambda p, _: p.poll(scan), ("result",)),
        "poll_unnamed": (lambda p, _: p.poll(unnamed), ("runcheck",)),
        "fetch": (fetch_op(scan), ("result",)),
        "cancel": (lambda p, _: p.cancel(scan, None), ("post",)),
    }
    env = {"VADDY_USER": "ci-user", "VADDY_AUTH_KEY": "0123456789abcdef0123"}
    return Spec("vaddy", (env,), routes, ops, options={"crawl_label": "all-data"})


def ncp_wsc() -> Spec:
    """NCP WSC (`providers/ncp-wsc.md`): signed calls, searches by state, reports by category."""
    service = {"returnCode": "169201", "returnMessage": "auth check error"}
    errors = (
        asset("ncp-wsc", "error_901.json"),
        asset("ncp-wsc", "error_gateway_401.json"),
        service,
    )
    search, empty = asset("ncp-wsc", "search.json"), asset("ncp-wsc", "success_null.json")
    created = {**empty, "resources": {"instanceNo": "1234567890"}}
    # The gateway's `Date` explains a 401 by clock skew (fact sheet "Request signing").
    edges = ("Mon, 01 Jan 0001 00:00:00 +1400", "Fri, 31 Dec 9999 23:59:59 -1400")
    date = {
        "Date": st.one_of(st.sampled_from(("Thu, 15 Jan 2026 10:00:00 GMT", *edges)), HEADER_TEXT)
    }
    routes = (
        Route("search", "POST", "jobs/search", (search, empty), errors, date),
        Route("jobs", "GET", "jobs", (search,), errors, date),
        Route("create", "PUT", "job", (created, empty), errors, date),
        Route("cancel", "PATCH", "jobs/[^/]+/cancel", (empty,), errors, date),
        Route("stop", "PATCH", "jobs/[^/]+/stop", (empty,), errors, date),
        Route("report", "GET", "jobs/[^/]+/report", (asset("ncp-wsc", "report.json"),), errors),
    )
    target = "http://target-domain.com"
    scan = ScanRef(scan_id=ScanId("1234567890"), target=target, extra={"memo": "Wsc Sample"})
    ops: dict[str, tuple[Op, tuple[str, ...]]] = {
        "find_running": (lambda p, _: p.find_running(target), ("search",)),
        "find_started": (lambda p, _: p.find_started(attempt(target, "Wsc Sample")), ("search",)),
        "attach": (lambda p, _: p.attach("1234567890", target), ("jobs",)),
        "start": (lambda p, _: p.start(attempt(target)), ("create", "search")),
        "poll": (lambda p, _: p.poll(scan), ("search",)),
        "fetch": (fetch_op(scan), ("search", "report")),
        "cancel": (lambda p, _: p.cancel(scan, None), ("cancel", "stop")),
    }
    env = {"NCP_ACCESS_KEY": "ncpAccessKeyExample01", "NCP_SECRET_KEY": "ncpSecretKey0123456789"}
    return Spec("ncp-wsc", (env,), routes, ops)


SPECS = {spec.name: spec for spec in (cystack(), cybersecpro(), cyberorigen(), vaddy(), ncp_wsc())}
"""Every provider, by registry name."""
