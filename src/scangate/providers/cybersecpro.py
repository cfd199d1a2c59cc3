"""CyberSec Pro: API key or JWT login, one tool scan per target, two result shapes, plan pacing.

Facts come from `providers/cybersecpro.md` (the "fact sheet"), cited by section in comments. Its
published reference [S0] and the service's implementation [R] disagree on several answers, so
every answer is read leniently and both shapes are accepted (design §1).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
from scangate.http import Connection, Refusal
from scangate.model import Finding, ScanId, ScanResult, ScanStatus
from scangate.model.scans import ScanProgress, ScanRef
from scangate.model.settings import ProviderSettings
from scangate.providers import _wire as wire
from scangate.providers import cybersecpro_wire as answers
from scangate.providers._login import TokenLogin, key_or_login, login_refused
from scangate.providers.cybersecpro_pacing import PLANS, Pacer
from scangate.providers.interface import (
    Capabilities,
    CredentialSpec,
    Provider,
    ScanHistory,
    StartAttempt,
    duration_between,
)
from scangate.providers.paging import PageGuard, shortfall
from scangate.text import one_line

logger = logging.getLogger(__name__)

API_KEY = "CYBERSECPRO_API_KEY"
EMAIL = "CYBERSECPRO_EMAIL"
PASSWORD = "CYBERSECPRO_PASSWORD"

DEFAULT_TOOL = "nuclei"
"""No documented default exists; design §9 "Targets and defaults" picks nuclei."""
LISTING_REUSE = 30.0
"""Seconds a `find_running` listing may stand in for `known_scans` (saves a request)."""
START_SKEW = timedelta(minutes=5)
"""Clock difference allowed between us and CyberSec Pro when matching a scan to an attempt."""
# Access JWTs live 1 hour (fact sheet "Token lifetime"): `DEFAULT_TOKEN_LIFE` when `exp` is
# unreadable.

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
_PLAN_HINT = (
    f"the account's plan lacks this feature: API keys need the professional or enterprise plan "
    f"(on others use {EMAIL} + {PASSWORD}), and some tools need a higher plan"
)
"""The remedy for a 402 `Plan upgrade required` (fact sheet "Error format", "Create")."""


class CyberSecProProvider(Provider, registered="cybersecpro"):
    """The CyberSec Pro adapter (`POST /scans/create`, `GET /scans/{id}`, `GET /scan/{id}/result`).

    Its published reference and its implementation disagree in places; it accepts both shapes.
    """

    DEFAULT_BASE_URL: ClassVar[str] = "https://api.cyber-sec-pro.com/api/v1"
    api_version: ClassVar[str] = "v1"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = key_or_login(
        API_KEY,
        EMAIL,
        PASSWORD,
        key_is="API key (csp_...; professional or enterprise plan, write permission)",
        login_is="account e-mail and password (1-hour JWT, refreshed; no MFA)",
    )
    options_schema: ClassVar[Mapping[str, Any]] = Provider.schema_of(
        {
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
    )

    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=False, eta=False, cancel=True, attach=True, rate_limit_headers=True
    )
    secret_headers: ClassVar[tuple[str, ...]] = ("Authorization", "X-API-Key", "Cookie")

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], connection: Connection
    ) -> None:
        """Create a new `CyberSecProProvider`; see `Provider.__init__`.

        With `CYBERSECPRO_API_KEY` every call carries the key; otherwise the first call logs in
        with `CYBERSECPRO_EMAIL` + `CYBERSECPRO_PASSWORD`, and the JWT is refreshed before it
        expires and once on a 401.
        """
        super().__init__(settings=settings, env=env, connection=connection)
        self._api_key = env.get(API_KEY, "").strip()
        self._login = TokenLogin(
            self.display_name,
            self.http.clock,
            login=self._log_in,
            refresh=self._refresh,
            refresh_token=True,
        )
        self._details: dict[str, Mapping[str, Any]] = {}
        self._listing: tuple[str, float, list[Mapping[str, Any]]] | None = None
        self._past: tuple[str, list[Mapping[str, Any]]] | None = None
        """`find_running`'s whole listing, kept for `expected_duration` (scans that ended then
        stay ended: the listing is history whatever its age)."""
        # Without `plan`, assume the smallest budget the credentials allow: API keys need the
        # professional plan (fact sheet "Basics"), any plan can log in.
        default_plan = "professional" if self._api_key else "trial"
        plan = str(self.options.get("plan", default_plan))
        self.pacer = Pacer(PLANS[plan], self.http, assumed="plan" not in self.options)
        self.redact.add(self._api_key or env.get(PASSWORD, ""))

    def credential_hint(self) -> str:
        """See `Provider.credential_hint`."""
        if not self.env.get(API_KEY, "").strip():
            return f"{EMAIL} + {PASSWORD}"
        return (
            f"{API_KEY} (a csp_ key with write permission; API access needs the professional "
            f"or enterprise plan, otherwise use {EMAIL} + {PASSWORD})"
        )

    def authorize(self, method: str, url: str) -> Mapping[str, str]:
        """See `Provider.authorize`: the API key, or the login's access token.

        Keys go in `X-API-Key` or as a Bearer token; the `csp_` prefix tells them from a JWT
        (fact sheet "Basics", API keys).
        """
        if not self._api_key:
            return self._login.headers()
        if self.options.get("key_header") == "bearer":
            return {"Authorization": f"Bearer {self._api_key}"}
        return {"X-API-Key": self._api_key}

    def renew_credentials(self) -> bool:
        """See `Provider.renew_credentials`: after a 401 the JWT is renewed, the call resent."""
        return not self._api_key and self._login.renew()

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """CyberSec Pro's error text: `error (code)` (fact sheet "Error format")."""
        if isinstance(body, Mapping):
            error = wire.text(body.get("error")) or wire.text(body.get("message"))
            found = wire.with_code(error, wire.text(body.get("code")))
            if found:
                return found
        return wire.body_start(response)

    @staticmethod
    def refusal(response: requests.Response, body: Any) -> Refusal | None:
        """See `Provider.refusal`: the starts-a-minute limit queues the start; the trial's
        daily limit does not clear within a run (fact sheet "Create": 429 `Too many scan
        requests` past 5 starts per 60 s per user, 429 `Daily scan limit reached`).

        `Too many login attempts` and `RATE_LIMITED` are the request rate (the default).
        """
        error = wire.text(body.get("error")).lower() if isinstance(body, Mapping) else ""
        if "too many scan requests" in error:
            return Refusal.busy(
                queue="a scan start (5 a minute per user)",
                usage="5 of 5 starts in the last minute",
                hint="CyberSec Pro allows 5 scan starts a minute per user; stagger parallel jobs",
            )
        if "daily scan limit" in error:
            return Refusal.final(
                "the trial plan allows 3 scans a day; no scan was started",
            )
        return None

    # Authentication (fact sheet "Authentication").

    def _authenticate(self) -> None:
        """Make sure a usable access token is in the headers (nothing to do with an API key)."""
        if not self._api_key:
            self._login.ensure()

    def _refresh(self) -> None:
        # The documented login answer carries no refresh token [S0]: then `TokenLogin` logs in.
        self.pacer.acquire()
        # The refresh JWT travels as the Bearer token (fact sheet "POST /api/v1/auth/refresh").
        response = self.http.request(
            "POST",
            "auth/refresh",
            headers={"Authorization": f"Bearer {self._login.refresh_token}"},
            idempotent=True,
            reauth=False,
        )
        self._take_token(answers.utf8_json(response))

    def _log_in(self) -> None:
        body = {"email": self.env.get(EMAIL, ""), "password": self.env.get(PASSWORD, "")}
        self.pacer.acquire()
        # A rejected login (400/401/403) is never sent again: a locked-out CI job would lock
        # out people too. Its 429 (more than 5 attempts a minute, fact sheet "POST
        # /api/v1/auth/login") processed nothing: the client sends it again after a backoff,
        # within scan.timeout, as matrix jobs sharing the account log in together.
        response = self.http.request(
            "POST", "auth/login", json_body=body, reauth=False, accept_status=(400, 401, 403)
        )
        hint = f"check {EMAIL} + {PASSWORD}; accounts with MFA need {API_KEY}"
        login_refused(self.http, response, self.display_name, hint)
        self._take_token(answers.utf8_json(response))

    def _take_token(self, body: Any) -> None:
        """Adopt the tokens of a login or refresh answer, redacting them before anything else."""
        if not isinstance(body, Mapping):
            raise UnexpectedResponseError("CyberSec Pro's login answer is not a JSON object")
        access, refresh = body.get("access_token"), body.get("refresh_token")
        for token in (access, refresh):
            if isinstance(token, str):
                self.redact.add(token)
        if body.get("mfa_required") is True:
            # The implementation answers 200 and waits for a code (fact sheet "Authentication").
            raise ProviderAuthError(
                "CyberSec Pro login needs an MFA code, which a CI job cannot give",
                hint=f"use {API_KEY} for an account with MFA",
            )
        if not isinstance(access, str) or not access.strip():
            error = one_line(self.redact(wire.text(body.get("error"))), 200)
            raise ProviderAuthError(
                f"CyberSec Pro login gave no access token{f': {error}' if error else ''}",
                hint=f"check {EMAIL} + {PASSWORD}",
            )
        # The refresh answer has no refresh token: the old one is kept.
        kept = refresh.strip() if isinstance(refresh, str) else ""
        now = self.now()
        life = answers.token_lifetime(access.strip(), now)
        self._login.adopt(access.strip(), life, kept, now=now)

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
            error = wire.text(body.get("error"))
            if error or body.get("success") is False:
                said = error or wire.text(body.get("message")) or "no reason given"
                raise ProviderError(
                    f"CyberSec Pro answered {method.upper()} {path} with an error (HTTP 200): "
                    + one_line(self.redact(said), 300)
                )
        return body

    # Looking scans up (fact sheet "List").

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: a pending or running scan of the same host."""
        host = wire.normalize_host(target)
        items: list[Mapping[str, Any]] = []
        for page in self._scan_pages():
            for item in page:
                raw = wire.text(item.get("status")).lower()
                if _same_host(item, host) and wire.text(item.get("id")) and _is_active(raw):
                    return self._ref(item, target)
            items.extend(page)
        self._listing = (host, self.now(), items)  # the whole list: known_scans reuses it
        self._past = (host, items)
        return None

    def expected_duration(self, target: str) -> ScanHistory | None:
        """See `Provider.expected_duration`: the host's completed scans in the scan list.

        List items are detail objects with `duration_seconds`, or `started_at`/`completed_at`
        (fact sheet "Detail", "List"). The listing `find_running` made is used when there is
        one; otherwise one page of 100, the newest, is read: on the Trial plan (10 requests a
        minute, fact sheet "Rate limits") history must not cost more than that one request.
        """
        host = wire.normalize_host(target)
        if self._past is not None and self._past[0] == host:
            items = self._past[1]
        else:
            params = {"page": 1, "per_page": answers.LIST_SIZE, "sort": "created_at"}
            items = answers.list_page(
                self._call("GET", "scans", params={**params, "order": "desc"})
            )[0]
        durations = [
            seconds
            for item in items
            if _same_host(item, host) and wire.text(item.get("status")).lower() == "completed"
            if (seconds := _duration(item)) is not None
        ]
        return ScanHistory(tuple(durations), source="CyberSec Pro scan list")

    def known_scans(self, target: str) -> frozenset[str]:
        """See `Provider.known_scans`: recent scans of the same host.

        A listing `find_running` just made is reused: on the trial plan every request counts.
        Otherwise scans older than `find_started` ever considers are not read.
        """
        host = wire.normalize_host(target)
        listing, self._listing = self._listing, None
        if listing and listing[0] == host and self.now() - listing[1] <= LISTING_REUSE:
            items = listing[2]
        else:
            now = datetime.fromtimestamp(self.now(), UTC)
            items = self._recent_scans(now - 2 * START_SKEW)
        return frozenset(
            wire.text(item.get("id"))
            for item in items
            if wire.text(item.get("id")) and _same_host(item, host)
        )

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        """See `Provider.find_started`: the first new scan of the host since the attempt."""
        host = wire.normalize_host(attempt.target)
        since = attempt.sent_at - START_SKEW
        found: list[tuple[datetime, Mapping[str, Any]]] = []
        for item in self._recent_scans(since):
            scan_id, created = wire.text(item.get("id")), wire.iso_time(item.get("created_at"))
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
        guard = PageGuard(self.display_name, "scans", answers.LIST_SIZE)
        page = 0
        while True:
            page += 1
            params = {
                "page": page,
                "per_page": answers.LIST_SIZE,
                "sort": "created_at",
                "order": "desc",
            }
            items, total, pages = answers.list_page(self._call("GET", "scans", params=params))
            guard.page(
                tuple(wire.text(i.get("id")) or repr(i) for i in items), total=total, pages=pages
            )
            read += len(items)
            yield items
            if answers.list_ended(page, items, read, total, pages) or answers.older(items, since):
                return

    def _ref(self, item: Mapping[str, Any], target: str) -> ScanRef:
        tool = wire.text(item.get("tool")) or wire.text(item.get("tool_name"))
        return ScanRef(
            scan_id=ScanId(wire.text(item.get("id")) or wire.text(item.get("scan_id"))),
            target=target,
            created_at=wire.iso_time(item.get("created_at")),
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
        scan_id = (
            wire.text(body.get("scan_id"))
            or wire.text(body.get("id"))
            or wire.text(nested.get("id"))
        )
        if not scan_id:
            raise AmbiguousStartError("CyberSec Pro accepted the start but named no scan id")
        status = wire.text(body.get("status")) or wire.text(nested.get("status"))
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
        detail = answers.scan_object(self._call("GET", f"scans/{quote(scan.scan_id, safe='')}"))
        self._details[scan.scan_id] = detail
        raw = wire.text(detail.get("status")).lower()
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
            message=answers.failure(detail) if status is ScanStatus.FAILED else "",
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
        body = answers.utf8_json(response)
        if isinstance(body, Mapping) and wire.text(body.get("error")):
            said = one_line(self.redact(wire.text(body.get("error"))), 300)
            raise ProviderError(f"CyberSec Pro refused to cancel scan {scan.scan_id}: {said}")

    @contextmanager
    def _urgent(self) -> Iterator[None]:
        """A cancel runs against a deadline (CI gives ~7 s): it never waits.

        It uses the budget's spare, and it is not held back by an earlier `Retry-After` (which
        the implementation sets to 60 s, fact sheet "Rate limits"): at worst it is refused.
        """
        held = self.http.hold_lifted()
        self.pacer.urgent = True
        try:
            yield
        finally:
            self.pacer.urgent = False
            self.http.restore_hold(held)

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
        return self.result(
            scan,
            progress,
            findings=findings,
            started_at=wire.iso_time(detail.get("started_at")) or scan.created_at,
            finished_at=wire.iso_time(detail.get("completed_at")),
            details={**answers.scan_details(detail, scan), **notes},
            shortfall=short,
        )

    def _findings(self, body: Any, scan: ScanRef) -> tuple[list[Finding], dict[str, str], str]:
        """The findings, notes for the report, and how they fall short of the counts."""
        items, counts, notes = answers.result_parts(body)
        findings = [
            f
            for f in (answers.finding(item, scan, self.settings.unrated_severity) for item in items)
            if f is not None
        ]
        if len(findings) < len(items):
            notes["findings_skipped"] = str(len(items) - len(findings))
        total = wire.integer(counts.get("total"))
        if total is not None:
            notes["findings_reported"] = str(total)
        short = shortfall(
            self.display_name,
            answers.announced(counts, findings),
            unreadable=len(items) - len(findings),
        )
        if short:
            logger.warning("CyberSec Pro scan %s: %s", scan.scan_id, short)
        return findings, notes, short


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


def _duration(item: Mapping[str, Any]) -> float | None:
    """A scan's run time: `duration_seconds`, else from `started_at` to `completed_at`.

    The implementation's times carry no zone and mean UTC (fact sheet "Detail").
    """
    seconds = wire.number(item.get("duration_seconds"))
    if seconds is not None and seconds > 0:
        return seconds
    return duration_between(
        wire.iso_time(item.get("started_at")), wire.iso_time(item.get("completed_at"))
    )


def _same_host(item: Mapping[str, Any], host: str) -> bool:
    return wire.normalize_host(wire.text(item.get("target"))) == host


def _is_active(raw: str) -> bool:
    return _STATUSES.get(raw or "pending") in (ScanStatus.PENDING, ScanStatus.RUNNING)
