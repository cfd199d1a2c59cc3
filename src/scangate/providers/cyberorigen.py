"""CyberOrigen: API-key or token login, scans listed by target, paged findings.

Facts come from `providers/cyberorigen.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from scangate.errors import (
    AmbiguousStartError,
    ProviderError,
    ProviderRateLimitError,
    UnexpectedResponseError,
)
from scangate.http import Connection, Refusal, json_body
from scangate.model import Finding, ScanId, ScanResult, ScanStatus, Severity
from scangate.model.scans import ScanProgress, ScanRef
from scangate.model.settings import ProviderSettings
from scangate.providers import _wire as wire
from scangate.providers._login import DEFAULT_TOKEN_LIFE, TokenLogin, key_or_login, login_refused
from scangate.providers.interface import Capabilities, CredentialSpec, Provider, StartAttempt
from scangate.providers.paging import (
    PageGuard,
    RateRoom,
    by_severity,
    last_page,
    read_pages,
    shortfall,
)
from scangate.text import one_line

logger = logging.getLogger(__name__)

API_KEY = "CYBERORIGEN_API_KEY"
USERNAME = "CYBERORIGEN_USERNAME"
PASSWORD = "CYBERORIGEN_PASSWORD"

PER_PAGE = 100
"""The documented maximum `per_page` (fact sheet "list & pagination")."""
START_SKEW = timedelta(minutes=5)
"""Clock difference allowed between us and CyberOrigen when matching a scan to a start attempt."""
KNOWN_WINDOW = timedelta(hours=1)
"""How far back `known_scans` looks: older scans can never pass `find_started`'s time filter."""
# A token answer without `expires_in` lives `DEFAULT_TOKEN_LIFE` (fact sheet "Authentication").

_STATUSES = {
    "pending": ScanStatus.PENDING,
    "queued": ScanStatus.PENDING,
    "running": ScanStatus.RUNNING,
    "completed": ScanStatus.COMPLETED,
    "complete": ScanStatus.COMPLETED,
    "failed": ScanStatus.FAILED,
    "error": ScanStatus.FAILED,
    "cancelled": ScanStatus.CANCELLED,
    "canceled": ScanStatus.CANCELLED,
}
"""Documented: pending, running, completed, failed, cancelled; the rest are lenient spellings."""
_ENDED = (ScanStatus.COMPLETED, ScanStatus.FAILED, ScanStatus.CANCELLED)
_COUNTS = ("vulnerabilities_found", "critical_count", "high_count", "medium_count", "low_count")
_COUNTED = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
"""The severities a finished scan counts (`<severity>_count`; there is no `info_count`)."""


class CyberOrigenProvider(Provider, registered="cyberorigen"):
    """The CyberOrigen adapter (`POST /scans`, `GET /scans/{id}`, `GET /scans/{id}/findings`)."""

    DEFAULT_BASE_URL: ClassVar[str] = "https://backend.cyberorigen.com/api/v1"
    api_version: ClassVar[str] = "v1"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = key_or_login(
        API_KEY,
        USERNAME,
        PASSWORD,
        key_is="API key (Professional/Enterprise; needs write:scans and read:findings)",
        login_is="account e-mail and password (1-hour token, refreshed; no MFA)",
    )
    options_schema: ClassVar[Mapping[str, Any]] = Provider.schema_of(
        {
            "scan_type": {
                "enum": ["quick", "full", "compliance"],
                "default": "full",
                "description": "quick (5-10 min), full (30-60 min, all phases), compliance",
            },
            "ports": {"type": "string", "minLength": 1, "description": 'e.g. "1-1000"'},
            "frameworks": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": 'compliance frameworks, e.g. ["soc2", "pci-dss"]',
            },
        },
    )

    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=True, eta=True, cancel=True, attach=True, rate_limit_headers=True
    )

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], connection: Connection
    ) -> None:
        """Create a new `CyberOrigenProvider`; see `Provider.__init__`.

        With `CYBERORIGEN_API_KEY` every call carries `X-API-Key`; otherwise the first call logs
        in with `CYBERORIGEN_USERNAME` + `CYBERORIGEN_PASSWORD` and the token is renewed
        before it expires and on a 401.
        """
        super().__init__(settings=settings, env=env, connection=connection)
        self._api_key = env.get(API_KEY, "").strip()
        # The refresh needs the current, still valid token in `Authorization`.
        self._login = TokenLogin(
            self.display_name,
            self.http.clock,
            login=self._log_in,
            refresh=self._refresh,
            refresh_token=False,
        )
        self.redact.add(self._api_key or env.get(PASSWORD, ""))

    def credential_hint(self) -> str:
        """See `Provider.credential_hint`."""
        if self.env.get(API_KEY, "").strip():
            return f"{API_KEY} (it needs write:scans and read:findings)"
        return f"{USERNAME} + {PASSWORD}"

    def authorize(self, method: str, url: str) -> Mapping[str, str]:
        """See `Provider.authorize`: `X-API-Key`, or the login's Bearer token."""
        return {"X-API-Key": self._api_key} if self._api_key else self._login.headers()

    def renew_credentials(self) -> bool:
        """See `Provider.renew_credentials`: a login token is refreshed (an API key is not)."""
        return not self._api_key and self._login.renew()

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """Return CyberOrigen's error text: `detail (error_code)` (fact sheet "Error format")."""
        if isinstance(body, Mapping):
            found = wire.with_code(
                _detail_text(body.get("detail")), wire.text(body.get("error_code"))
            )
            if found:
                return found
        return wire.body_start(response)

    @staticmethod
    def refusal(response: requests.Response, body: Any) -> Refusal | None:
        """See `Provider.refusal`: the plan's concurrent-scan limit queues the start; its
        monthly scan quota does not clear within a run.

        NOTE: neither answer is documented; the fact sheet ("Scan quotas / concurrency per plan")
        INFERS a 429 (or 403) with `error_code` `CONCURRENT_SCAN_LIMIT` or `QUOTA_EXCEEDED`.
        """
        if not isinstance(body, Mapping):
            return None
        code = wire.text(body.get("error_code")).upper()
        detail = _detail_text(body.get("detail"))
        if code == "CONCURRENT_SCAN_LIMIT" or "concurrent scan" in detail.lower():
            return Refusal.busy(
                queue="a free scan slot",
                usage=_slots_in_use(detail),
                hint="the plan's concurrent scans are all running; Professional allows 3, "
                "Enterprise is unlimited (or run fewer matrix jobs at once)",
            )
        if code == "QUOTA_EXCEEDED":
            return Refusal.final(
                "the plan's monthly scan quota is used up (GET /scans/quota says when it "
                "resets); upgrade the plan or wait; no scan was started",
            )
        return None

    # Authentication (fact sheet "Authentication").

    def _authenticate(self) -> None:
        """Make sure a usable token is in the headers (nothing to do with an API key)."""
        if not self._api_key:
            self._login.ensure()

    def _refresh(self) -> None:
        self._take_token(self.http.request("POST", "auth/refresh", idempotent=True, reauth=False))

    def _log_in(self) -> None:
        # OAuth2 password form, not JSON (fact sheet "POST /api/v1/auth/token").
        form = {"username": self.env.get(USERNAME, ""), "password": self.env.get(PASSWORD, "")}
        response = self.http.request(
            "POST", "auth/token", data=form, idempotent=True, reauth=False, accept_status=(400, 422)
        )
        hint = f"check {USERNAME} + {PASSWORD}; accounts with MFA need {API_KEY}"
        login_refused(self.http, response, self.display_name, hint)
        self._take_token(response)

    def _take_token(self, response: requests.Response) -> None:
        """Adopt the token in a login/refresh answer, redacting it before anything else."""
        body = json_body(response)
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token.strip():
            raise UnexpectedResponseError("CyberOrigen's token answer has no access_token")
        self.redact.add(token)
        lifetime = wire.number(body.get("expires_in")) if isinstance(body, Mapping) else None
        self._login.adopt(
            token.strip(), lifetime if lifetime and lifetime > 0 else DEFAULT_TOKEN_LIFE
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send an authenticated request and return its parsed JSON body."""
        self._authenticate()
        return self.http.json(method, path, **kwargs)

    # Looking scans up (fact sheet "GET /api/v1/scans — list & pagination").

    def preflight(self, target: str) -> None:
        """Refuse to start when the monthly scan quota is used up (`GET /scans/quota`)."""
        self._authenticate()
        # Self-hosted installs or keys without the permission may lack the route: not fatal.
        response = self.http.request("GET", "scans/quota", accept_status=(403, 404))
        if not response.ok:
            logger.info("CyberOrigen scan quota not available (HTTP %d)", response.status_code)
            return
        try:
            quota = response.json()
        except (ValueError, RecursionError):
            logger.warning("CyberOrigen scan quota answer is not JSON; not checked")
            return
        if isinstance(quota, Mapping):
            _check_quota(quota)

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: a pending or running scan of the same host."""
        host = wire.normalize_host(target)
        for status in ("pending", "running"):
            for item in self._scans({"target": host, "status": status}):
                if wire.normalize_host(wire.text(item.get("target"))) == host and wire.text(
                    item.get("id")
                ):
                    return self._ref(item, target)
        return None

    def known_scans(self, target: str) -> frozenset[str]:
        """See `Provider.known_scans`: scans of the same host created in the last hour."""
        host = wire.normalize_host(target)
        since = datetime.fromtimestamp(self.now(), UTC) - KNOWN_WINDOW
        items = self._scans({"target": host, "from_date": wire.iso(since)})
        return frozenset(
            wire.text(item.get("id"))
            for item in items
            if wire.text(item.get("id"))
            and wire.normalize_host(wire.text(item.get("target"))) == host
        )

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        """See `Provider.find_started`: a new scan of the host created since the attempt."""
        host = wire.normalize_host(attempt.target)
        since = attempt.sent_at - START_SKEW
        scan_type = self._scan_type()
        found: list[tuple[datetime, Mapping[str, Any]]] = []
        for item in self._scans({"target": host, "from_date": wire.iso(since)}):
            scan_id = wire.text(item.get("id"))
            created = wire.iso_time(item.get("created_at"))
            if (
                scan_id
                and scan_id not in attempt.known_ids
                and wire.normalize_host(wire.text(item.get("target"))) == host
                and wire.text(item.get("scan_type"), scan_type) == scan_type
                and (created is None or created >= since)
            ):
                found.append((created or attempt.sent_at, item))
        if not found:
            return None
        # Ours is the first one created after the request was sent.
        return self._ref(min(found, key=lambda pair: pair[0])[1], attempt.target)

    def _scans(self, filters: Mapping[str, str]) -> list[Mapping[str, Any]]:
        items: list[Mapping[str, Any]] = []
        self._paged(
            "scans",
            filters,
            lambda batch: items.extend(item for item in batch if isinstance(item, Mapping)),
        )
        return items

    def _paged(
        self, path: str, params: Mapping[str, str], take: Callable[[list[Any]], None]
    ) -> tuple[int, int | None]:
        """Hand every item of a paged list (objects or not) to `take`, a page at a time; return
        how many were handed over and the `total` the list announced.

        Paging reads to CyberOrigen's own end (fact sheet "list & pagination"): an empty page,
        or the announced `total` reached and the announced last page read, or, with neither
        announced, a short page. An item seen on an earlier page is not listed twice. A page
        repeating the one before or bringing only items already read (a server ignoring
        `page`), or far more pages than announced, raises `PagingError` (exit 3).

        The pages page 1 announces are read a few at a time within the request budget
        (`paging.read_pages`), and checked and handed over in page order; only the ids of
        the items read are kept, so a 100,000-finding list is never held raw.
        """
        seen: set[str] = set()
        guard = PageGuard(self.display_name, path, PER_PAGE)
        read = 0

        def fetch(page: int) -> tuple[list[Any], int | None, int | None]:
            query = {**params, "page": page, "per_page": PER_PAGE}
            return _page_parts(self._call("GET", path, params=query), path)

        pages = read_pages(
            fetch,
            lambda parts: guard.announced(parts[1], parts[2]),
            admit=RateRoom(self.http.rate_state, self.http.clock),
        )
        with closing(pages):
            for page, (batch, total, count) in pages:
                ids = [_item_id(item) for item in batch]
                guard.page(
                    tuple(found or repr(item) for found, item in zip(ids, batch, strict=True)),
                    total=total,
                    pages=count,
                )
                if not batch:
                    return read, total
                fresh = [
                    item
                    for found, item in zip(ids, batch, strict=True)
                    if not found or found not in seen
                ]
                if not fresh:
                    guard.repeated()
                seen.update(found for found in ids if found)
                read += len(fresh)
                take(fresh)
                if last_page(page, len(batch), read, total, count, PER_PAGE):
                    return read, total
        raise AssertionError("unreachable: `read_pages` never ends by itself")

    # One scan (fact sheet "POST /api/v1/scans", "GET /api/v1/scans/{id}").

    def start(self, attempt: StartAttempt) -> ScanRef:
        """See `Provider.start`: `POST /scans`, never retried once sent."""
        try:
            body = self._call("POST", "scans", json_body=self._start_body(attempt), creates=True)
        except ProviderError as exc:
            if type(exc) is ProviderError and _is_url(attempt.target):
                # See: https://docs.cyberorigen.com/reference/troubleshooting.html ("Check
                # target format": `http://example.com` and `example.com/page` are invalid).
                raise ProviderError(
                    exc.message,
                    hint="CyberOrigen takes a domain, IP or CIDR; set scan.target to the host",
                ) from None
            raise
        if not isinstance(body, Mapping) or not wire.text(body.get("id")):
            raise AmbiguousStartError("CyberOrigen accepted the start but named no scan id")
        return self._ref(body, attempt.target)

    def _start_body(self, attempt: StartAttempt) -> dict[str, Any]:
        # `authorized` is a required attestation; configuring scangate for the target is it.
        body: dict[str, Any] = {
            "target": attempt.target,
            "scan_type": self._scan_type(),
            "authorized": True,
        }
        if "ports" in self.options:
            body["ports"] = str(self.options["ports"])
        if "frameworks" in self.options:
            body["frameworks"] = [str(name) for name in self.options["frameworks"]]
        return body

    def _scan_type(self) -> str:
        return str(self.options.get("scan_type", "full"))

    def _ref(self, item: Mapping[str, Any], target: str) -> ScanRef:
        extra = {key: wire.text(item.get(key)) for key in ("scan_type", "estimated_duration")}
        return ScanRef(
            scan_id=ScanId(wire.text(item.get("id"))),
            target=target,
            created_at=wire.iso_time(item.get("created_at")),
            extra={key: value for key, value in extra.items() if value},
        )

    def _scan(self, scan_id: str) -> Mapping[str, Any]:
        body = self._call("GET", f"scans/{quote(scan_id, safe='')}")
        if not isinstance(body, Mapping):
            raise UnexpectedResponseError(f"CyberOrigen scan {scan_id}: the answer is no object")
        return body

    def poll(self, scan: ScanRef) -> ScanProgress:
        """See `Provider.poll`."""
        body = self._scan(scan.scan_id)
        raw = wire.text(body.get("status")).lower()
        status = _STATUSES.get(raw)
        if status is None:
            # An unknown word is not an end; `scan.timeout` bounds the wait.
            logger.warning("CyberOrigen scan status %r unknown; still waiting", one_line(raw, 40))
            status = ScanStatus.RUNNING
        progress = wire.percent(body.get("progress"))
        ended_early = status in (ScanStatus.FAILED, ScanStatus.CANCELLED)
        return ScanProgress(
            status=status,
            raw_status=raw,
            progress=progress,
            phase=wire.text(body.get("phase")),
            eta_seconds=None if status.terminal else self._eta(scan, body, progress),
            completeness=int(progress or 0) if ended_early else 100,
            message=_failure(body) if status is ScanStatus.FAILED else "",
        )

    def _eta(self, scan: ScanRef, body: Mapping[str, Any], progress: float | None) -> float | None:
        """Seconds left: `estimated_duration` minus the time run, else from the progress."""
        begun = (
            wire.iso_time(body.get("started_at"))
            or wire.iso_time(body.get("created_at"))
            or scan.created_at
        )
        if begun is None:
            return None
        elapsed = max(0.0, self.now() - begun.timestamp())
        estimate = wire.number(body.get("estimated_duration")) or wire.number(
            scan.extra.get("estimated_duration")
        )
        if estimate and estimate > elapsed:
            return estimate - elapsed
        # No ETA made up from the percentage: the poll schedule extrapolates `progress` itself,
        # with the tolerance a percentage has (2 % of a minute-old scan says little), whereas
        # an ETA is trusted to a share of the scan, and a made-up one from an early 1-2 % sent
        # a whole minute's sleep past a 3-second scan's end.
        return None

    # Results (fact sheet "GET /api/v1/scans/{id}/findings").

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        """See `Provider.fetch`. A scan that did not complete gives what can still be read."""
        read = self.salvage(scan, progress, partial(self._scan, scan.scan_id))
        found = None
        if read is not None:
            found = self.salvage(scan, progress, partial(self._findings, scan, read))
        findings, notes, short = found or self.NOTHING_READ
        details = read or {}
        return self.result(
            scan,
            progress,
            findings=findings,
            started_at=wire.iso_time(details.get("started_at") or details.get("created_at")),
            finished_at=wire.iso_time(details.get("completed_at")),
            details={**_scan_details(details), **notes},
            shortfall=short,
        )

    def _findings(
        self, scan: ScanRef, details: Mapping[str, Any]
    ) -> tuple[list[Finding], dict[str, str], str]:
        """The findings, notes for the report, and how they fall short of the announced counts."""
        path = f"scans/{quote(scan.scan_id, safe='')}/findings"
        findings: list[Finding] = []

        def take(batch: list[Any]) -> None:
            # Mapped as each page arrives: its raw items are dropped with the page.
            mapped = (self._finding(item, scan) for item in batch)
            findings.extend(finding for finding in mapped if finding is not None)

        # NOTE: paging is INFERRED (the findings answer documents only `items` + `total`).
        listed, total = self._paged(path, {}, take)
        notes = {"findings_reported": str(total if total is not None else listed)}
        if len(findings) < listed:
            notes["findings_skipped"] = str(listed - len(findings))
        short = shortfall(
            self.display_name,
            _announced(details, total, findings),
            unreadable=listed - len(findings),
        )
        if short:
            logger.warning("CyberOrigen scan %s: %s", scan.scan_id, short)
        return findings, notes, short

    def _finding(self, raw: Any, scan: ScanRef) -> Finding | None:
        """Map one finding; None (with a warning) when it has no title or severity."""
        if not isinstance(raw, Mapping):
            logger.warning("CyberOrigen finding skipped: not an object")
            return None
        title = wire.text(raw.get("title"))
        severity = _severity(raw)
        if not title or severity is None:
            logger.warning(
                "CyberOrigen finding %s skipped: no usable %s",
                one_line(wire.text(raw.get("id"), "(no id)"), 80),
                "title" if not title else "severity",
            )
            return None
        status = wire.text(raw.get("status"))
        # No rule id exists (fact sheet "findings"): `Finding.create` makes one from the title.
        return Finding.create(
            provider=self.name,
            rule_id="",
            title=title,
            severity=severity,
            url=wire.text(raw.get("affected_component")),
            cvss=wire.cvss(raw.get("cvss_score")),
            cve_ids=wire.strings(raw.get("cve_ids")),
            description=wire.text(raw.get("description")),
            remediation=wire.text(raw.get("remediation")),
            provider_status=status,
            false_positive=status.lower() == "false_positive",
            console_url=scan.console_url,
        )

    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        """See `Provider.cancel`: `DELETE /scans/{id}`; a vanished scan (404) is fine."""
        if progress is not None and progress.status in _ENDED:
            # NOTE: DELETE on a finished scan deletes it (fact sheet "DELETE", INFERRED).
            return
        self._authenticate()
        self.http.request("DELETE", f"scans/{quote(scan.scan_id, safe='')}", accept_status=(404,))


def _check_quota(body: Mapping[str, Any]) -> None:
    """Raise when `remaining` is 0 (fact sheet "GET /api/v1/scans/quota")."""
    remaining = wire.number(body.get("remaining"))
    if remaining is None or remaining > 0:
        return  # Enterprise plans are unlimited: no number at all.
    plan = one_line(wire.text(body.get("plan"), "unknown"), 40)
    limit = one_line(wire.text(body.get("monthly_limit"), "?"), 20)
    used = one_line(wire.text(body.get("used_this_month"), "?"), 20)
    resets = one_line(wire.text(body.get("resets_at"), "the start of next month"), 40)
    raise ProviderRateLimitError(
        f"CyberOrigen monthly scan quota exhausted: plan {plan} allows {limit} scans a month, "
        f"{used} used; it resets at {resets}",
        hint="wait for the reset or upgrade the plan; no scan was started",
    )


def _slots_in_use(detail: str) -> str:
    """`3 of 3 in use` from a concurrency refusal such as `... (3 on the professional plan)`."""
    found = re.search(r"\b(\d+)\b", detail)
    if found is None:
        return "all in use"
    return f"{found.group(1)} of {found.group(1)} in use"


def _is_url(target: str) -> bool:
    """True for a target with a scheme or a path, which CyberOrigen refuses."""
    text = target.strip().rstrip("/")
    if "://" in text:
        return True
    return "/" in text and not text.partition("/")[2].isdigit()


def _page_parts(body: Any, path: str) -> tuple[list[Any], int | None, int | None]:
    """Split a list answer into (items, total, pages); a bare array is accepted too."""
    if isinstance(body, list):
        return body, None, None
    if isinstance(body, Mapping) and isinstance(body.get("items"), list):
        return body["items"], wire.integer(body.get("total")), wire.integer(body.get("pages"))
    raise UnexpectedResponseError(f"CyberOrigen {path}: the answer has no `items` list")


def _item_id(item: Any) -> str:
    return wire.text(item.get("id")) if isinstance(item, Mapping) else ""


def _announced(
    details: Mapping[str, Any], total: int | None, findings: list[Finding]
) -> list[tuple[str, int | None, int]]:
    """(what, announced, fetched) for `shortfall`: the findings list's `total`, the scan's
    `vulnerabilities_found` (the larger of the two) and its per-severity counts (fact sheet
    "GET /api/v1/scans/{id}": completed scans carry them)."""
    totals = [
        n for n in (total, wire.integer(details.get("vulnerabilities_found"))) if n is not None
    ]
    levels = {s: wire.integer(details.get(f"{s.label}_count")) for s in _COUNTED}
    return [("findings", max(totals) if totals else None, len(findings))] + by_severity(
        levels, findings
    )


def _severity(raw: Mapping[str, Any]) -> Severity | None:
    """The finding's severity; from its CVSS score when the word is missing or unknown."""
    try:
        return Severity.parse(wire.text(raw.get("severity")))
    except ValueError:
        pass
    score = wire.cvss(raw.get("cvss_score"))
    # The CVSS v3 bands, as https://docs.cyberorigen.com/guide/findings ("Severity Levels").
    return None if score is None else wire.cvss_severity(score)


def _failure(body: Mapping[str, Any]) -> str:
    said = wire.first_text(body, ("error", "message", "error_message", "detail"))
    if said:
        return one_line(said, 300)
    phase = wire.text(body.get("phase"))
    return f"CyberOrigen reported the scan failed{f' in phase {phase}' if phase else ''}"


def _scan_details(body: Mapping[str, Any]) -> dict[str, str]:
    keys = ("scan_type", "phase", "current_tool", *_COUNTS)
    return {key: wire.text(body.get(key)) for key in keys if wire.text(body.get(key))}


def _detail_text(detail: Any) -> str:
    """`detail` as text; FastAPI's 422 gives a list of `{loc, msg}` objects."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = item.get("loc")
                where = ".".join(wire.text(part) for part in (loc if isinstance(loc, list) else ()))
                parts.append(
                    f"{where}: {wire.text(item.get('msg'))}"
                    if where
                    else wire.text(item.get("msg"))
                )
        return "; ".join(part for part in parts if part)
    return wire.text(detail)
