"""CyberSec Pro: API key or JWT login, one tool scan per target, two result shapes, plan pacing.

Facts come from `providers/cybersecpro.md` (the "fact sheet"), cited by section in comments. Its
published reference [S0] and the service's implementation [R] disagree on several answers, so
every answer is read leniently and both shapes are accepted (design §1).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from scangate.errors import (
    AmbiguousStartError,
    ProviderAuthError,
    ProviderBusyError,
    ProviderError,
    ProviderRateLimitError,
    UnexpectedResponseError,
)
from scangate.http import HttpClient, Refusal, RefusalKind
from scangate.model import Finding, ScanId, ScanResult, ScanStatus, Severity
from scangate.policy import ProviderSettings
from scangate.providers.cyberorigen import normalize_host
from scangate.providers.interface import (
    Capabilities,
    CredentialSpec,
    Provider,
    ScanProgress,
    ScanRef,
    StartAttempt,
)
from scangate.providers.paging import PageGuard, by_severity, shortfall
from scangate.text import one_line

logger = logging.getLogger(__name__)

API_KEY = "CYBERSECPRO_API_KEY"
EMAIL = "CYBERSECPRO_EMAIL"
PASSWORD = "CYBERSECPRO_PASSWORD"

DEFAULT_TOOL = "nuclei"
"""No documented default exists; design §9 "Targets and defaults" picks nuclei."""
LIST_SIZE = 100
"""The implementation's maximum `per_page` (fact sheet "List")."""
LISTING_REUSE = 30.0
"""Seconds a `find_running` listing may stand in for `known_scans` (saves a request)."""
START_SKEW = timedelta(minutes=5)
"""Clock difference allowed between us and CyberSec Pro when matching a scan to an attempt."""
DEFAULT_TOKEN_LIFE = 3600.0
"""Access JWTs live 1 hour (fact sheet "Token lifetime"); used when `exp` is unreadable."""
REFRESH_MARGIN = 300.0
"""Refresh a token this many seconds (at most a tenth of its life) before it expires."""
WINDOW = 61.0
"""The plan's one-minute window plus a second for clock differences."""
REFILL_MARGIN = 0.9
"""Share of the plan's rate assumed for burst refills, for latency between us and the server."""
SPARE = 1
"""Requests of each budget kept back so that a cancel always gets through."""


@dataclass(frozen=True)
class Plan:
    """One plan's documented request budget (fact sheet "Rate limits", doc [S0])."""

    name: str
    per_minute: int
    burst: int


PLANS = {
    "trial": Plan("trial", 10, 5),
    "starter": Plan("starter", 30, 15),
    "professional": Plan("professional", 60, 30),
    "enterprise": Plan("enterprise", 300, 100),
}

_STATUSES = {
    "created": ScanStatus.PENDING,
    "pending": ScanStatus.PENDING,
    "queued": ScanStatus.PENDING,
    "running": ScanStatus.RUNNING,
    "completed": ScanStatus.COMPLETED,
    "failed": ScanStatus.FAILED,
    "error": ScanStatus.FAILED,
    "cancelled": ScanStatus.CANCELLED,
    "canceled": ScanStatus.CANCELLED,
    "stopped": ScanStatus.CANCELLED,
}
"""Doc: created, completed; impl: pending, running, completed, failed, cancelled (fact sheet
"Status values"); the rest are lenient spellings."""
_URL_KEYS = ("url", "matched_at", "matched-at", "location", "endpoint", "host")
"""Where a tool's finding may name its location; neither documented shape has one."""
_RULE_KEYS = ("template_id", "template-id", "rule", "check")
_TOOL_LISTS = ("vulnerabilities", "findings")
"""Lists of the implementation's tool-parser object that hold findings (fact sheet "Result")."""
_INVENTORY = ("services", "subdomains", "directories")
_PLAN_HINT = (
    f"the account's plan lacks this feature: API keys need the professional or enterprise plan "
    f"(on others use {EMAIL} + {PASSWORD}), and some tools need a higher plan"
)
"""The remedy for a 402 `Plan upgrade required` (fact sheet "Error format", "Create")."""
"""Lists of the tool-parser object that are inventory, counted but not findings."""


class Pacer:
    """Keeps this run's requests within the plan's per-minute budget and burst.

    CyberSec Pro documents 10/30/60/300 requests a minute with bursts of 5/15/30/100 (fact sheet
    "Rate limits"); the implementation sends no `X-RateLimit-*` headers, so the budget must be
    known in advance (option `plan`). INFERRED: the burst is a token bucket of that size refilled
    at the per-minute rate. Every request except a cancel leaves `SPARE` of both budgets unused,
    and waits (on the client's injectable sleep) when it would not.
    """

    def __init__(self, plan: Plan, http: HttpClient, *, assumed: bool = False) -> None:
        """Create a new `Pacer` for `plan`, counting the requests `http` sends.

        An `assumed` plan (the policy names none) yields to any `X-RateLimit-Limit` the server
        sends; a configured one only to a smaller limit.
        """
        self.plan = plan
        self.http = http
        self.assumed = assumed
        self.urgent = False
        """While set, requests are counted but never held back (cancelling on a deadline)."""
        self._sent: deque[float] = deque()
        self._tokens = float(plan.burst)
        self._filled_at: float | None = None
        self._accounted = http.requests_sent
        self._refused = http.stats.limited

    def acquire(self) -> None:
        """Wait until one more request fits the budget, then count it as sent."""
        self._catch_up()
        wait = 0.0 if self.urgent else self._wait_needed()
        if wait > 0:
            logger.info("CyberSec Pro %s plan budget: waiting %.1f s", self.plan.name, wait)
            self.http.sleep(wait)
        self._take(1)
        self._accounted += 1

    def _catch_up(self) -> None:
        """Count requests sent without `acquire` (re-sends after a 401, malformed-JSON retries)."""
        self._adopt_server_limit()
        extra = self.http.requests_sent - self._accounted
        if extra > 0:
            self._take(extra)
            self._accounted += extra
        # A request answered 429 was not processed, and its `Retry-After` is waited out by the
        # HTTP client already: it gives its share of the budget back (jobs sharing an account
        # get many; counting them twice would stall each job far beyond the plan's own limit).
        refused = self.http.stats.limited - self._refused
        if refused > 0:
            self._refused += refused
            self._tokens = min(float(self.plan.burst), self._tokens + refused)
            for _ in range(min(refused, len(self._sent))):
                self._sent.pop()

    def _adopt_server_limit(self) -> None:
        # The documented `X-RateLimit-Limit` is the plan's quota (fact sheet "Rate limits",
        # INFERRED): below the configured plan's, the account is on a smaller plan than the
        # policy says; without a configured plan, it tells which one.
        limit = self.http.rate.limit
        if limit is None or limit < 1 or limit == self.plan.per_minute:
            return
        if limit > self.plan.per_minute and not self.assumed:
            return
        match = [plan for plan in PLANS.values() if plan.per_minute == limit]
        self.plan = match[0] if match else Plan("reported", limit, max(1, limit // 2))
        self._tokens = min(self._tokens, float(self.plan.burst))
        log = logger.info if self.assumed else logger.warning
        log("CyberSec Pro reports %d requests a minute; pacing to that", limit)

    def _refill(self, now: float) -> None:
        rate = self.plan.per_minute / 60.0 * REFILL_MARGIN
        if self._filled_at is not None:
            self._tokens = min(self.plan.burst, self._tokens + (now - self._filled_at) * rate)
        self._filled_at = now
        while self._sent and self._sent[0] <= now - WINDOW:
            self._sent.popleft()

    def _take(self, count: int) -> None:
        now = self.http.clock()
        self._refill(now)
        self._tokens -= count
        self._sent.extend([now] * count)

    def _wait_needed(self) -> float:
        """Seconds until a request leaves `SPARE` of the window, the bucket and the headers."""
        now = self.http.clock()
        self._refill(now)
        waits = [0.0]
        over = len(self._sent) + 1 + SPARE - self.plan.per_minute
        if over > 0 and self._sent:
            # A plan of one or two a minute (a reported `X-RateLimit-Limit`) cannot keep the
            # spare at all: then wait for the whole window to empty.
            waits.append(self._sent[min(over, len(self._sent)) - 1] + WINDOW - now)
        short = 1 + SPARE - self._tokens
        if short > 0:
            waits.append(short / (self.plan.per_minute / 60.0 * REFILL_MARGIN))
        rate = self.http.rate
        if rate.remaining is not None and rate.remaining < 1 + SPARE and rate.reset_at:
            # The budget is per minute: a reset further off than one window is a broken or
            # hostile header, and believing it could stall the job for years.
            waits.append(min(rate.reset_at + 1.0 - now, WINDOW))
        return max(waits)


class CyberSecProProvider(Provider):
    """The CyberSec Pro adapter (`POST /scans/create`, `GET /scans/{id}`, `GET /scan/{id}/result`).

    Its published reference and its implementation disagree in places; it accepts both shapes.
    """

    name: ClassVar[str] = "cybersecpro"
    display_name: ClassVar[str] = "CyberSec Pro"
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.cyber-sec-pro.com/api/v1"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec(
            variables=(API_KEY,),
            secret=frozenset({API_KEY}),
            description="API key (csp_...; professional or enterprise plan, write permission)",
        ),
        CredentialSpec(
            variables=(EMAIL, PASSWORD),
            secret=frozenset({PASSWORD}),
            description="account e-mail and password (1-hour JWT, refreshed; no MFA)",
        ),
    )
    options_schema: ClassVar[Mapping[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "tool": {
                "type": "string",
                "minLength": 1,
                "default": DEFAULT_TOOL,
                "description": "the scanning tool, by id or name (nuclei, nmap, nikto, ...)",
            },
            "parameters": {
                "type": "object",
                "default": {},
                "description": 'tool parameters, e.g. {"ports": "1-10000", "timing": "-T4"}',
            },
            "plan": {
                "enum": list(PLANS),
                "description": "the account's plan, for its request budget (default: "
                "professional with an API key, trial with e-mail and password)",
            },
            "key_header": {
                "enum": ["x-api-key", "bearer"],
                "default": "x-api-key",
                "description": "send the API key as X-API-Key or as Authorization: Bearer",
            },
            "agent_id": {"type": "string", "minLength": 1, "description": "run on this agent"},
            "project_id": {"type": "integer", "minimum": 1, "description": "file under project"},
        },
        "additionalProperties": False,
    }
    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=False, eta=False, cancel=True, attach=True, rate_limit_headers=True
    )
    secret_headers: ClassVar[tuple[str, ...]] = ("Authorization", "X-API-Key", "Cookie")
    """Headers the runner's `HttpClient` must never send to another host."""

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], http: HttpClient
    ) -> None:
        """Create a new `CyberSecProProvider`; see `Provider.__init__`.

        With `CYBERSECPRO_API_KEY` every call carries the key; otherwise the first call logs in
        with `CYBERSECPRO_EMAIL` + `CYBERSECPRO_PASSWORD`, and the JWT is refreshed before it
        expires and once on a 401.
        """
        super().__init__(settings=settings, env=env, http=http)
        self._api_key = env.get(API_KEY, "").strip()
        self._access = ""
        self._refresh = ""
        self._expires_at = 0.0
        self._lifetime = DEFAULT_TOKEN_LIFE
        self._details: dict[str, Mapping[str, Any]] = {}
        self._listing: tuple[str, float, list[Mapping[str, Any]]] | None = None
        # Without `plan`, assume the smallest budget the credentials allow: API keys need the
        # professional plan (fact sheet "Basics"), any plan can log in.
        default_plan = "professional" if self._api_key else "trial"
        plan = str(self.options.get("plan", default_plan))
        self.pacer = Pacer(PLANS[plan], http, assumed="plan" not in self.options)
        if self._api_key:
            self._use_key()
        else:
            http.redact.add(env.get(PASSWORD, ""))
            http.credential_hint = f"{EMAIL} + {PASSWORD}"
            http.on_unauthorized = self._renew

    def _use_key(self) -> None:
        # Keys go in `X-API-Key` or as a Bearer token; the `csp_` prefix tells them from a JWT
        # (fact sheet "Basics", API keys).
        self.http.redact.add(self._api_key)
        if self.options.get("key_header") == "bearer":
            self.http.default_headers["Authorization"] = f"Bearer {self._api_key}"
        else:
            self.http.default_headers["X-API-Key"] = self._api_key
        self.http.credential_hint = (
            f"{API_KEY} (a csp_ key with write permission; API access needs the professional "
            f"or enterprise plan, otherwise use {EMAIL} + {PASSWORD})"
        )

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """CyberSec Pro's error text: `error (code)` (fact sheet "Error format")."""
        if isinstance(body, Mapping):
            error = _text(body.get("error")) or _text(body.get("message"))
            code = _text(body.get("code"))
            if error and code:
                return f"{error} ({code})"
            if error or code:
                return error or code
        return response.text[:300].strip()

    @staticmethod
    def refusal(response: requests.Response, body: Any) -> Refusal | None:
        """See `Provider.refusal`: the starts-a-minute limit queues the start; the trial's
        daily limit does not clear within a run (fact sheet "Create": 429 `Too many scan
        requests` past 5 starts per 60 s per user, 429 `Daily scan limit reached`).

        `Too many login attempts` and `RATE_LIMITED` are the request rate (the default).
        """
        error = _text(body.get("error")).lower() if isinstance(body, Mapping) else ""
        if "too many scan requests" in error:
            return Refusal(
                kind=RefusalKind.BUSY,
                queue="a scan start (5 a minute per user)",
                usage="5 of 5 starts in the last minute",
                hint="CyberSec Pro allows 5 scan starts a minute per user; stagger parallel jobs",
            )
        if "daily scan limit" in error:
            return Refusal(
                kind=RefusalKind.FINAL,
                hint="the trial plan allows 3 scans a day; no scan was started",
            )
        return None

    # Authentication (fact sheet "Authentication").

    def _authenticate(self) -> None:
        """Make sure a usable access token is in the headers (nothing to do with an API key)."""
        if self._api_key:
            return
        if not self._access:
            self._login()
        elif self.http.clock() >= self._expires_at - min(REFRESH_MARGIN, self._lifetime / 10):
            self._refresh_or_login()

    def _renew(self) -> bool:
        """`HttpClient.on_unauthorized`: after a 401, renew the token; the call is resent once."""
        self._refresh_or_login()
        return True

    def _refresh_or_login(self) -> None:
        if not self._refresh:
            # The documented login answer carries no refresh token [S0]: log in again.
            self._login()
            return
        self.pacer.acquire()
        try:
            # The refresh JWT travels as the Bearer token (fact sheet "POST /api/v1/auth/refresh").
            response = self.http.request(
                "POST",
                "auth/refresh",
                headers={"Authorization": f"Bearer {self._refresh}"},
                idempotent=True,
                reauth=False,
            )
            self._take_token(_json_of(response))
        except ProviderError as exc:
            logger.info("CyberSec Pro token refresh failed (%s); logging in again", exc.message)
            self._refresh = ""
            self._login()

    def _login(self) -> None:
        body = {"email": self.env.get(EMAIL, ""), "password": self.env.get(PASSWORD, "")}
        self.pacer.acquire()
        # A rejected login (400/401/403) is never sent again: a locked-out CI job would lock
        # out people too. Its 429 (more than 5 attempts a minute, fact sheet "POST
        # /api/v1/auth/login") processed nothing: the client sends it again after a backoff,
        # within scan.timeout, as matrix jobs sharing the account log in together.
        response = self.http.request(
            "POST", "auth/login", json_body=body, reauth=False, accept_status=(400, 401, 403)
        )
        if not response.ok:
            raise ProviderAuthError(
                f"CyberSec Pro login failed: {self.http.status_error(response).message}",
                hint=f"check {EMAIL} + {PASSWORD}; accounts with MFA need {API_KEY}",
            )
        self._take_token(_json_of(response))

    def _take_token(self, body: Any) -> None:
        """Adopt the tokens of a login or refresh answer, redacting them before anything else."""
        if not isinstance(body, Mapping):
            raise UnexpectedResponseError("CyberSec Pro's login answer is not a JSON object")
        access, refresh = body.get("access_token"), body.get("refresh_token")
        for token in (access, refresh):
            if isinstance(token, str):
                self.http.redact.add(token)
        if body.get("mfa_required") is True:
            # The implementation answers 200 and waits for a code (fact sheet "Authentication").
            raise ProviderAuthError(
                "CyberSec Pro login needs an MFA code, which a CI job cannot give",
                hint=f"use {API_KEY} for an account with MFA",
            )
        if not isinstance(access, str) or not access.strip():
            error = one_line(self.http.redact(_text(body.get("error"))), 200)
            raise ProviderAuthError(
                f"CyberSec Pro login gave no access token{f': {error}' if error else ''}",
                hint=f"check {EMAIL} + {PASSWORD}",
            )
        if isinstance(refresh, str) and refresh.strip():
            self._refresh = refresh.strip()  # the refresh answer has none: keep the old one
        now = self.http.clock()
        self._access = access.strip()
        self._lifetime = _token_lifetime(self._access, now)
        self._expires_at = now + self._lifetime
        self.http.default_headers["Authorization"] = f"Bearer {self._access}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send an authenticated, paced request and return its JSON body.

        An HTTP 200 body carrying `{"error": ...}` is an error (fact sheet "Status values").
        """
        self._authenticate()
        self.pacer.acquire()
        try:
            body = self.http.json(method, path, **kwargs)
        except ProviderError as exc:
            if type(exc) is ProviderError and "(HTTP 402 " in exc.message:
                raise ProviderError(exc.message, hint=_PLAN_HINT) from None
            raise
        if isinstance(body, Mapping):
            error = _text(body.get("error"))
            if error or body.get("success") is False:
                said = error or _text(body.get("message")) or "no reason given"
                raise ProviderError(
                    f"CyberSec Pro answered {method.upper()} {path} with an error (HTTP 200): "
                    + one_line(self.http.redact(said), 300)
                )
        return body

    # Looking scans up (fact sheet "List").

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: a pending or running scan of the same host."""
        host = normalize_host(target)
        items: list[Mapping[str, Any]] = []
        for page in self._scan_pages():
            for item in page:
                raw = _text(item.get("status")).lower()
                if _same_host(item, host) and _text(item.get("id")) and _is_active(raw):
                    return self._ref(item, target)
            items.extend(page)
        self._listing = (host, self.http.clock(), items)  # the whole list: known_scans reuses it
        return None

    def known_scans(self, target: str) -> frozenset[str]:
        """See `Provider.known_scans`: recent scans of the same host.

        A listing `find_running` just made is reused: on the trial plan every request counts.
        Otherwise scans older than `find_started` ever considers are not read.
        """
        host = normalize_host(target)
        listing, self._listing = self._listing, None
        if listing and listing[0] == host and self.http.clock() - listing[1] <= LISTING_REUSE:
            items = listing[2]
        else:
            now = datetime.fromtimestamp(self.http.clock(), timezone.utc)
            items = self._recent_scans(now - 2 * START_SKEW)
        return frozenset(
            _text(item.get("id"))
            for item in items
            if _text(item.get("id")) and _same_host(item, host)
        )

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        """See `Provider.find_started`: the first new scan of the host since the attempt."""
        host = normalize_host(attempt.target)
        since = attempt.sent_at - START_SKEW
        found: list[tuple[datetime, Mapping[str, Any]]] = []
        for item in self._recent_scans(since):
            scan_id, created = _text(item.get("id")), _parse_time(item.get("created_at"))
            if (
                scan_id
                and scan_id not in attempt.known_ids
                and _same_host(item, host)
                and (created is None or created >= since)
            ):
                found.append((created or attempt.sent_at, item))
        if not found:
            return None
        return self._ref(min(found, key=lambda pair: pair[0])[1], attempt.target)

    def _recent_scans(self, since: datetime | None = None) -> list[Mapping[str, Any]]:
        """The account's scans (since `since`, when given), newest first (see `_scan_pages`)."""
        return [item for page in self._scan_pages(since) for item in page]

    def _scan_pages(self, since: datetime | None = None) -> Iterator[list[Mapping[str, Any]]]:
        """The pages of the account's scans, newest first, in either list shape, to its end.

        The end is the announced last page or total, or a short or empty page (fact sheet
        "List"); with `since`, also the first page reaching a scan created before it (every
        later page is older still, and every request counts against the plan). `sort`/`order`
        are documented [S0] and ignored by the implementation, whose order is always newest
        first [R]. A looping list raises `PagingError` (exit 3).
        """
        read = 0
        guard = PageGuard(self.display_name, "scans", LIST_SIZE)
        page = 0
        while True:
            page += 1
            params = {"page": page, "per_page": LIST_SIZE, "sort": "created_at", "order": "desc"}
            items, total, pages = _list_page(self._call("GET", "scans", params=params))
            guard.page(
                tuple(_text(i.get("id")) or repr(i) for i in items), total=total, pages=pages
            )
            read += len(items)
            yield items
            if _list_ended(page, items, read, total, pages) or _older(items, since):
                return

    def _ref(self, item: Mapping[str, Any], target: str) -> ScanRef:
        tool = _text(item.get("tool")) or _text(item.get("tool_name"))
        return ScanRef(
            scan_id=ScanId(_text(item.get("id")) or _text(item.get("scan_id"))),
            target=target,
            created_at=_parse_time(item.get("created_at")),
            extra={"tool": tool} if tool else {},
        )

    # One scan (fact sheet "Create", "Detail", "Cancel").

    def start(self, attempt: StartAttempt) -> ScanRef:
        """See `Provider.start`: `POST /scans/create`, never retried once sent."""
        try:
            body = self._call(
                "POST", "scans/create", json_body=self._start_body(attempt), creates=True
            )
        except AmbiguousStartError:
            raise
        except ProviderError as exc:
            raise _start_refused(exc) from None
        if not isinstance(body, Mapping):
            raise AmbiguousStartError("CyberSec Pro accepted the start but its answer is no object")
        scan = body.get("scan")
        nested: Mapping[str, Any] = scan if isinstance(scan, Mapping) else {}
        # Doc: `id` + `created`; impl: `scan_id` + `running` (fact sheet "Create").
        scan_id = _text(body.get("scan_id")) or _text(body.get("id")) or _text(nested.get("id"))
        if not scan_id:
            raise AmbiguousStartError("CyberSec Pro accepted the start but named no scan id")
        status = _text(body.get("status")) or _text(nested.get("status"))
        if status.lower() not in ("created", "pending", "running"):
            logger.warning("CyberSec Pro started scan %s as %r", scan_id, one_line(status, 40))
        return self._ref({**nested, **body, "id": scan_id}, attempt.target)

    def _start_body(self, attempt: StartAttempt) -> dict[str, Any]:
        # `scan_type` and `notify` of the documented example are ignored by the implementation.
        body: dict[str, Any] = {
            "target": attempt.target,
            "tool": str(self.options.get("tool", DEFAULT_TOOL)),
            "parameters": dict(self.options.get("parameters", {})),
        }
        for key in ("agent_id", "project_id"):
            if key in self.options:
                body[key] = self.options[key]
        return body

    def poll(self, scan: ScanRef) -> ScanProgress:
        """See `Provider.poll`: `GET /scans/{id}`, the detail wrapped in `scan`."""
        detail = _scan_object(self._call("GET", f"scans/{quote(scan.scan_id, safe='')}"))
        self._details[scan.scan_id] = detail
        raw = _text(detail.get("status")).lower()
        # The implementation stores a null status for a scan not yet started: pending.
        status = _STATUSES.get(raw or "pending")
        if status is None:
            # An unknown word is not an end; `scan.timeout` bounds the wait.
            logger.warning("CyberSec Pro scan status %r unknown; still waiting", one_line(raw, 40))
            status = ScanStatus.RUNNING
        ended_early = status in (ScanStatus.FAILED, ScanStatus.CANCELLED)
        return ScanProgress(
            status=status,
            raw_status=raw or "pending",
            completeness=0 if ended_early else 100,
            message=_failure(detail) if status is ScanStatus.FAILED else "",
        )

    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        """See `Provider.cancel`: `POST /scans/{id}/cancel`; an ended scan (404) is fine."""
        if progress is not None and progress.status.terminal:
            return  # only pending or running scans can be cancelled (fact sheet "Cancel")
        with self._urgent():
            self._authenticate()
            self.pacer.acquire()
            response = self.http.request(
                "POST",
                f"scans/{quote(scan.scan_id, safe='')}/cancel",
                idempotent=True,
                accept_status=(404,),
            )
        if response.status_code == 404:
            logger.info("CyberSec Pro scan %s had already ended", scan.scan_id)
            return
        body = _json_of(response)
        if isinstance(body, Mapping) and _text(body.get("error")):
            said = one_line(self.http.redact(_text(body.get("error"))), 300)
            raise ProviderError(f"CyberSec Pro refused to cancel scan {scan.scan_id}: {said}")

    @contextmanager
    def _urgent(self) -> Iterator[None]:
        """A cancel runs against a deadline (CI gives ~7 s): it never waits.

        It uses the budget's spare, and it is not held back by an earlier `Retry-After` (which
        the implementation sets to 60 s, fact sheet "Rate limits"): at worst it is refused.
        """
        rate = self.http.rate
        held, rate.hold_until = rate.hold_until, 0.0
        self.pacer.urgent = True
        try:
            yield
        finally:
            self.pacer.urgent = False
            rate.hold_until = max(held, rate.hold_until)

    # Results (fact sheet "Result — GET /api/v1/scan/{id}/result").

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        """See `Provider.fetch`. A scan that did not complete gives what can still be read."""
        findings: list[Finding] = []
        notes: dict[str, str] = {}
        short = ""
        try:
            body = self._call("GET", f"scan/{quote(scan.scan_id, safe='')}/result")
            findings, notes, short = self._findings(body, scan)
        except ProviderError as exc:
            if progress.status is ScanStatus.COMPLETED:
                raise
            logger.warning("CyberSec Pro scan %s: partial results only (%s)", scan.scan_id, exc)
        detail = self._details.get(scan.scan_id, {})
        return ScanResult(
            provider=self.name,
            scanner=self.display_name,
            scan_id=scan.scan_id,
            target=scan.target,
            status=progress.status,
            completeness=progress.completeness,
            started_at=_parse_time(detail.get("started_at")) or scan.created_at,
            finished_at=_parse_time(detail.get("completed_at")),
            findings=tuple(findings),
            console_url=scan.console_url,
            message=progress.message,
            details={**_scan_details(detail, scan), **notes},
            shortfall=short,
        )

    def _findings(self, body: Any, scan: ScanRef) -> tuple[list[Finding], dict[str, str], str]:
        """The findings, notes for the report, and how they fall short of the counts."""
        items, counts, notes = _result_parts(body)
        findings = [f for f in (self._finding(item, scan) for item in items) if f is not None]
        if len(findings) < len(items):
            notes["findings_skipped"] = str(len(items) - len(findings))
        total = _integer(counts.get("total"))
        if total is not None:
            notes["findings_reported"] = str(total)
        short = shortfall(
            self.display_name, _announced(counts, findings), unreadable=len(items) - len(findings)
        )
        if short:
            logger.warning("CyberSec Pro scan %s: %s", scan.scan_id, short)
        return findings, notes, short

    def _finding(self, raw: Any, scan: ScanRef) -> Finding | None:
        """Map one finding of either shape; None (with a warning) when it has no title."""
        if not isinstance(raw, Mapping):
            logger.warning("CyberSec Pro finding skipped: not an object")
            return None
        title = _text(raw.get("title")) or _text(raw.get("name"))
        if not title:
            logger.warning("CyberSec Pro finding %s skipped: no title", _finding_label(raw))
            return None
        cvss = _cvss(raw.get("cvss") if raw.get("cvss") is not None else raw.get("cvss_score"))
        # Without a template or check id `Finding.create` makes the rule id from the title.
        rule = next((_text(raw.get(key)) for key in _RULE_KEYS if _text(raw.get(key))), "")
        return Finding.create(
            provider=self.name,
            rule_id=rule,
            title=title,
            severity=self._severity(raw, cvss, title),
            url=next((_text(raw.get(k)) for k in _URL_KEYS if _text(raw.get(k))), scan.target),
            method=_text(raw.get("method")),
            parameter=_text(raw.get("parameter")) or _text(raw.get("param")),
            cvss=cvss,
            cve_ids=_cves(raw),
            description=_text(raw.get("description")),
            remediation=_text(raw.get("remediation")),
            response=_text(raw.get("evidence")),
            console_url=scan.console_url,
        )

    def _severity(self, raw: Mapping[str, Any], cvss: float | None, title: str) -> Severity:
        """The finding's severity; from CVSS when unknown, else the policy's unrated severity."""
        word = _text(raw.get("severity")).lower()
        if word == "none":
            return Severity.INFO
        try:
            return Severity.parse(word)
        except ValueError:
            pass
        if cvss is not None:
            # CVSS v3 qualitative bands (FIRST CVSS v3.1 specification, section 5).
            bands = ((9.0, Severity.CRITICAL), (7.0, Severity.HIGH), (4.0, Severity.MEDIUM))
            default = Severity.LOW if cvss > 0 else Severity.INFO
            return next((sev for floor, sev in bands if cvss >= floor), default)
        fallback = self.settings.unrated_severity
        logger.warning(
            "CyberSec Pro finding %r has no usable severity; counted as %s",
            one_line(title, 80),
            fallback.label,
        )
        return fallback


def _start_refused(exc: ProviderError) -> ProviderError:
    """`exc` with a hint for the refusals the implementation documents (fact sheet "Create")."""
    message = exc.message
    if isinstance(exc, ProviderBusyError):
        return exc  # queued by the runner; `refusal` gave it its hint
    if isinstance(exc, ProviderRateLimitError):
        if "daily" in message.lower():
            hint = "the trial plan allows 3 scans a day; no scan was started"
        else:
            hint = "CyberSec Pro allows 5 scan starts a minute per user; stagger parallel jobs"
        return ProviderRateLimitError(message, hint=hint)
    hints = {
        "HTTP 402": _PLAN_HINT,
        "HTTP 404": "check provider.options.tool (a tool id or name, e.g. nuclei)",
        "HTTP 400": "scan.target must be a domain, IP, CIDR or URL (1-500 characters)",
    }
    hint = next((text for key, text in hints.items() if key in message), exc.hint)
    return type(exc)(message, hint=hint)


def _json_of(response: requests.Response) -> Any:
    try:
        return json.loads(response.content.decode("utf-8")) if response.content else None
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested past the decoder's limit
        return None


def _token_lifetime(token: str, now: float) -> float:
    """Seconds an access JWT lives, from its `exp` (and `iat`) claims; 1 hour if unreadable.

    The claims are read without checking the signature: only the server can, and it only
    decides when to refresh. `exp - iat` is used when both exist, so clock skew does not count.
    """
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return DEFAULT_TOKEN_LIFE
    if not isinstance(claims, Mapping):
        return DEFAULT_TOKEN_LIFE
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    life = (exp - iat) if exp is not None and iat is not None else (exp - now if exp else None)
    return life if life is not None and 0 < life <= 30 * 86400 else DEFAULT_TOKEN_LIFE


def _scan_object(body: Any) -> Mapping[str, Any]:
    """The scan of a detail answer: `{"scan": {...}}` [R], or the object itself."""
    scan = body.get("scan") if isinstance(body, Mapping) else None
    if isinstance(scan, Mapping):
        return scan
    if isinstance(body, Mapping) and ("status" in body or "id" in body):
        return body
    raise UnexpectedResponseError("CyberSec Pro's scan detail has no scan object")


def _result_parts(body: Any) -> tuple[list[Any], Mapping[str, Any], dict[str, str]]:
    """(finding items, announced counts, notes) of a result answer in either shape.

    Doc: `vulnerabilities[]` next to `findings` counts. Impl: `execution_result.findings`, the
    tool parser's object with `summary`, `vulnerabilities[]`, `findings[]` and inventory lists.
    """
    if not isinstance(body, Mapping):
        raise UnexpectedResponseError("CyberSec Pro's scan result is not a JSON object")
    execution = body.get("execution_result")
    tool: Any = execution.get("findings") if isinstance(execution, Mapping) else None
    top = body.get("findings")
    if tool is None and isinstance(top, Mapping) and any(k in top for k in _TOOL_LISTS):
        tool = top  # a tool object where the documented counts would be
    if not any(key in body for key in ("vulnerabilities", "execution_result", "findings", "scan")):
        raise UnexpectedResponseError("CyberSec Pro's scan result has no findings of any shape")
    items = _list(body.get("vulnerabilities")) + (top if isinstance(top, list) else [])
    if isinstance(tool, Mapping):
        items += [item for key in _TOOL_LISTS for item in _list(tool.get(key))]
    elif isinstance(tool, list):
        items += tool
    counts = tool.get("summary") if isinstance(tool, Mapping) else top
    notes = {"result_shape": "documented" if "vulnerabilities" in body else "implementation"}
    if isinstance(tool, Mapping):
        notes.update({key: str(len(_list(tool[key]))) for key in _INVENTORY if key in tool})
    return items, counts if isinstance(counts, Mapping) else {}, notes


def _announced(
    counts: Mapping[str, Any], findings: list[Finding]
) -> list[tuple[str, int | None, int]]:
    """(what, announced, fetched) for `shortfall`: the result's counts, `total` and one per
    severity (doc `findings` counts, impl tool `summary`; fact sheet "Result": "counts must
    equal the vulnerability list")."""
    levels = {s: _integer(counts.get(s.label)) for s in Severity}
    total = ("findings", _integer(counts.get("total")), len(findings))
    return [total, *by_severity(levels, findings)]


def _list_page(body: Any) -> tuple[list[Mapping[str, Any]], int | None, int | None]:
    """(scans, total, pages) of one list page in either shape (fact sheet "List").

    Doc: `{"data": [...], "pagination": {page, per_page, total, total_pages}}`; impl:
    `{"scans": [...], "total", "page", "per_page"}`; a bare array is one whole page.
    """
    total = pages = None
    if isinstance(body, list):
        items: Any = body
        pages = 1
    elif isinstance(body, Mapping) and isinstance(body.get("data"), list):
        items = body["data"]
        pagination = body.get("pagination")
        if isinstance(pagination, Mapping):
            total = _integer(pagination.get("total"))
            pages = _integer(pagination.get("total_pages"))
    elif isinstance(body, Mapping) and isinstance(body.get("scans"), list):
        items, total = body["scans"], _integer(body.get("total"))
    else:
        raise UnexpectedResponseError("CyberSec Pro's scan list has neither data nor scans")
    return [item for item in items if isinstance(item, Mapping)], total, pages


def _list_ended(
    page: int, items: list[Any], read: int, total: int | None, pages: int | None
) -> bool:
    if not items:
        return True
    if total is None and pages is None:
        return len(items) < LIST_SIZE
    return (total is None or read >= total) and (pages is None or page >= pages)


def _older(items: list[Mapping[str, Any]], since: datetime | None) -> bool:
    """True when the page reaches a scan created before `since` (the list is newest first)."""
    if since is None:
        return False
    created = [moment for item in items if (moment := _parse_time(item.get("created_at")))]
    return bool(created) and min(created) < since


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _scan_details(detail: Mapping[str, Any], scan: ScanRef) -> dict[str, str]:
    summary = detail.get("findings_summary")
    found = {
        "tool": _text(detail.get("tool_name")) or scan.extra.get("tool", ""),
        "duration": _text(detail.get("duration")),
        "open_ports": _text(summary.get("open_ports")) if isinstance(summary, Mapping) else "",
    }
    return {key: value for key, value in found.items() if value}


def _failure(detail: Mapping[str, Any]) -> str:
    for key in ("error_log", "error", "message"):
        text = _text(detail.get(key))
        if text:
            return one_line(text, 300)
    return "CyberSec Pro reported the scan failed"


def _same_host(item: Mapping[str, Any], host: str) -> bool:
    return normalize_host(_text(item.get("target"))) == host


def _is_active(raw: str) -> bool:
    return _STATUSES.get(raw or "pending") in (ScanStatus.PENDING, ScanStatus.RUNNING)


def _finding_label(raw: Mapping[str, Any]) -> str:
    return one_line(_text(raw.get("id"), "(no id)"), 80)


def _cves(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """`cve` as one id [S0] or a list; `cve_ids` too."""
    found: list[str] = []
    for key in ("cve", "cve_id", "cve_ids"):
        value = raw.get(key)
        values = value if isinstance(value, list) else [value]
        found += [text for text in (_text(item) for item in values) if text]
    return tuple(dict.fromkeys(found))


def _cvss(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else min(10.0, max(0.0, number))


def _text(value: Any, default: str = "") -> str:
    """A scalar as stripped text; anything else (None, objects, lists) as `default`."""
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list)):
        return default
    return str(value).strip() or default


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a float
        return None
    return number if math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; None if unusable.

    The implementation's timestamps have no zone (`2026-01-15T14:30:00`): they are UTC
    (fact sheet "Detail").
    """
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        return None  # year 1 or 9999 with an offset that leaves the range
