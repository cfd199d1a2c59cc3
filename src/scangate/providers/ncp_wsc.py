"""NAVER Cloud Web Security Checker: signed requests, jobs found by memo, reports by category.

Facts come from `providers/ncp-wsc.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import requests

from scangate.errors import (
    AmbiguousStartError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.http import HttpClient, Refusal, RefusalKind
from scangate.model import Finding, ScanId, ScanResult, ScanStatus, Severity
from scangate.policy import ProviderSettings
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

ACCESS_KEY = "NCP_ACCESS_KEY"
SECRET_KEY = "NCP_SECRET_KEY"
CREDENTIALS = f"{ACCESS_KEY} + {SECRET_KEY}"

RISK_LEVELS = ("High", "Medium", "Low")
"""`RiskLevel` values and the levels `Classify_byRisk_Level` counts (fact sheet "getReport")."""
PAGE_LIMIT = 50
"""`limit` of every search; the documented example uses 10 and no maximum is published."""
FIND_TRIES = 3
"""Memo searches for a job just created before concluding it does not exist (each createJob is
billed, so a job that is slow to appear must not be mistaken for none)."""
FIND_PAUSE = 2.0
"""Seconds between those searches."""
SKEW_LIMIT = 300.0
"""The gateway refuses timestamps more than 5 minutes from its clock (fact sheet "Request
signing")."""
SKEW_SUSPECT = 240.0
"""A clock this far from the gateway's `Date` explains a 401 (the header has 1 s resolution and
the request took time, so the check starts a minute early)."""
KST = timezone(timedelta(hours=9))
"""INFERRED: `start_date`/`end_date` carry no zone; NCP is a Korean service and its console
shows Korea Standard Time."""

DEFAULT_VULN_ITEMS = ("ALL",)
DEFAULT_USER_AGENT = "PC Chrome"
DEFAULT_SPEED = "1"
"""Defaults for required createJob fields without a documented default (design §9)."""


@dataclass(frozen=True)
class _Code:
    """One documented `statusCode` (fact sheet "searchJobs")."""

    status: ScanStatus
    phase: str
    text: str
    """The English display string, INFERRED except "Diagnostics completed"."""


CODES: Mapping[int, _Code] = {
    12: _Code(ScanStatus.PENDING, "crawl pending", "URL collection pending"),
    13: _Code(ScanStatus.RUNNING, "crawling", "URL collection in progress"),
    14: _Code(ScanStatus.RUNNING, "crawl completed", "URL collection completed"),
    2: _Code(ScanStatus.RUNNING, "diagnosis pending", "Diagnostics pending"),
    3: _Code(ScanStatus.RUNNING, "diagnosing", "Diagnostics in progress"),
    4: _Code(ScanStatus.COMPLETED, "diagnosis completed", "Diagnostics completed"),
    5: _Code(ScanStatus.FAILED, "diagnosis failed", "Diagnostics failed"),
    15: _Code(ScanStatus.FAILED, "crawl failed", "URL collection failed"),
    91: _Code(ScanStatus.CANCELLED, "cancelled", "Diagnostics canceled"),
    # Stopping is as good as stopped for a gate: the job will not complete (fact sheet
    # "cancelJob / stopJob").
    92: _Code(ScanStatus.CANCELLED, "stopping", "Stopping"),
    93: _Code(ScanStatus.CANCELLED, "stopped", "Job stopped"),
}
FLOW = (12, 13, 14, 2, 3, 4)
"""The normal order: crawl pending, crawling, crawled, diagnosis pending, diagnosing, done
(INFERRED in the fact sheet "Emulator notes" from `Crawl_Time` preceding `Scan_Time`)."""
ENDINGS = (5, 15, 91, 92, 93)
"""The codes a job ends in other than 4 (fact sheet "searchJobs": terminal 4, 5, 15, 91, 93)."""
ACTIVE = (12, 13, 14, 2, 3)
PENDING_CODES = (12, 14, 2)
"""cancelJob applies to jobs not started (12, 2); 14 is the moment between crawl and diagnosis."""
RUNNING_CODES = (13, 3)
"""stopJob applies to jobs in progress."""
_BUTTON_HINTS = {"report": 4, "cancel": 91, "terminate": 93, "cause": 5}
"""`result_button` values and the code each suggests (fact sheet "getJobs")."""
_TEXT_HINTS = {code.text.lower(): number for number, code in CODES.items()}
_TEXT_HINTS.update({"diagnostics cancelled": 91, "job stopping": 92})

_GATEWAY: Mapping[str, tuple[type[ProviderError], str, str]] = {
    "100": (ProviderError, "refused the request as malformed", ""),
    "200": (ProviderAuthError, "rejected the credentials", f"check {CREDENTIALS}"),
    "210": (
        ProviderAuthError,
        "denied permission",
        f"the Sub Account of {ACCESS_KEY} needs permission for Web Security Checker",
    ),
    "300": (ProviderError, "has no such API", "check provider.base_url (it ends in /api/v1)"),
    "400": (ProviderRateLimitError, "quota exceeded", "wait for the API quota to reset"),
    "410": (ProviderRateLimitError, "throttled the request", "lower the request rate"),
    "420": (ProviderRateLimitError, "rate-limited the request", "lower the request rate"),
    "430": (ProviderError, "refused a request body as too large", ""),
    "500": (ProviderUnavailableError, "endpoint error", "NCP may be down; try again later"),
    "510": (ProviderUnavailableError, "endpoint timeout", "NCP may be down; try again later"),
    "900": (ProviderUnavailableError, "unexpected gateway error", "try again later"),
}
"""API Gateway `errorCode`s (fact sheet "Errors" 1), mostly strings on the wire."""

_SERVICE: Mapping[str, tuple[type[ProviderError], str, str]] = {
    "901": (
        ProviderError,
        "API call failed (temporary, or an unknown job id)",
        "try again later; if it persists, check the job id in the WSC console",
    ),
    "169201": (
        ProviderAuthError,
        "auth check error: no permission for Web Security Checker",
        f"give the Sub Account of {ACCESS_KEY} WSC permissions; check {CREDENTIALS}",
    ),
    "169202": (
        ProviderAuthError,
        "user check error: account verification failed",
        f"check that WSC is subscribed in the NCP console and {CREDENTIALS} belong to it",
    ),
    "160331": (
        ProviderError,
        "action URL check error",
        "the login action URL configured for the target must not contain http/https",
    ),
    "160332": (
        ProviderError,
        "parameter check error: disallowed characters in the ID/PW parameters",
        "fix the login ID/PW parameters configured for the target",
    ),
    "160351": (
        ProviderError,
        "the login to the target failed",
        "supply a session cookie in provider.options.headers instead",
    ),
    "160353": (
        ProviderError,
        "cannot connect to the start URL",
        "WSC only diagnoses servers created on NCP and reachable from it; check scan.target",
    ),
}
"""Service `errorCode`s (fact sheet "Errors" 2), numbers on the wire; the public list is cut."""


class ApiCallFailError(ProviderError):
    """Service error 901 "API Call Fail": temporary, or a job id unknown or in the wrong state."""


@dataclass(frozen=True)
class _Retry:
    """A read worth one more try (service error 901, malformed JSON), with its error."""

    error: ProviderError


def signature(secret: str, method: str, uri: str, timestamp: str, access_key: str) -> str:
    """The `x-ncp-apigw-signature-v2` value (fact sheet "Request signing").

    Base64(HMAC-SHA256(key = secret, msg = "METHOD URI\\nTIMESTAMP\\nACCESSKEY")), where `uri` is
    the path from `/api/v1` including the query string.
    """
    message = f"{method.upper()} {uri}\n{timestamp}\n{access_key}"
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class NcpWscProvider(Provider):
    """The WSC adapter: `PUT /job`, `POST /jobs/search`, `PATCH …/cancel|stop`, `GET …/report`."""

    name: ClassVar[str] = "ncp-wsc"
    display_name: ClassVar[str] = "NAVER Cloud Web Security Checker"
    DEFAULT_BASE_URL: ClassVar[str] = "https://wsc.apigw.ntruss.com/api/v1"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec(
            variables=(ACCESS_KEY, SECRET_KEY),
            secret=frozenset({SECRET_KEY}),
            description="Sub Account access key and secret key (HMAC-SHA256 request signing)",
        ),
    )
    options_schema: ClassVar[Mapping[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "vuln_items": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "default": list(DEFAULT_VULN_ITEMS),
                "description": 'VulnItems: ["ALL"] or item names, e.g. ["XSS", "SQL Injection"]',
            },
            "user_agent": {
                "enum": ["Android", "iPhone", "PC Chrome", "PC IE"],
                "default": DEFAULT_USER_AGENT,
                "description": "UserAgent of the crawler and the diagnosis",
            },
            "speed": {
                "enum": ["1", "2", "3", 1, 2, 3],
                "default": DEFAULT_SPEED,
                "description": "Speed: 1 normal, 2 a bit faster, 3 fast (sent as a string)",
            },
            "exclude_urls": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "ExcludeUrl: URLs the job skips",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Headers sent to the target (non-secret: no secrets in a policy)",
            },
            "master_instance_no": {
                "anyOf": [
                    {"type": "string", "pattern": "^[0-9]+$"},
                    {"type": "integer", "minimum": 1},
                ],
                "description": "MasterInstanceNo: re-diagnose this completed job's URLs",
            },
        },
        "additionalProperties": False,
    }
    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=True, eta=False, cancel=True, attach=True, rate_limit_headers=False
    )
    secret_headers: ClassVar[tuple[str, ...]] = (
        "x-ncp-apigw-signature-v2",
        "x-ncp-iam-access-key",
    )
    """Headers the runner's `HttpClient` must never send to another host."""

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], http: HttpClient
    ) -> None:
        """Create a new `NcpWscProvider`; see `Provider.__init__`.

        Every request is signed with `NCP_SECRET_KEY` for its own method, URI and timestamp.
        """
        super().__init__(settings=settings, env=env, http=http)
        self._access_key = env.get(ACCESS_KEY, "").strip()
        self._secret_key = env.get(SECRET_KEY, "").strip()
        http.redact.add(self._secret_key)
        http.credential_hint = CREDENTIALS
        self._codes: dict[str, int] = {}
        """Last `statusCode` seen per job: the next poll asks about it first."""
        self._records: dict[str, Mapping[str, Any]] = {}
        """Last search record per job (dates and counts for the result)."""
        self._progress: dict[str, float] = {}
        self._unknown: dict[str, str] = {}
        """Jobs in a state no documented code lists, with its display string."""

    @staticmethod
    def error_detail(response: requests.Response, body: Any) -> str:
        """NCP's error text: `errorCode N: message (details)` (fact sheet "Errors")."""
        found = _error_of(body)
        if found is None:
            return response.text[:300].strip()
        code, message, details = found
        return f"errorCode {code}: {message}" + (f" ({details})" if details else "")

    @staticmethod
    def refusal(response: requests.Response, body: Any) -> Refusal | None:
        """See `Provider.refusal`: the gateway's HTTP 429 `Quota Exceeded` (errorCode 400) does
        not clear within a run; `Throttle Limited` (410) and `Rate Limited` (420) are the
        request rate (fact sheet "Errors" 1). NCP documents no concurrent-job limit.
        """
        found = _error_of(body)
        if response.status_code == 429 and found is not None and found[0] == "400":
            return Refusal(
                kind=RefusalKind.FINAL,
                hint="the API Gateway quota of this NCP account is used up; wait for it to "
                "reset or raise it in the NCP console",
            )
        return None

    # Signed requests (fact sheet "Request signing", "Common response wrapper", "Errors").

    def _headers(self, method: str, uri: str) -> dict[str, str]:
        timestamp = str(int(self.http.clock() * 1000))
        return {
            "x-ncp-apigw-timestamp": timestamp,
            "x-ncp-iam-access-key": self._access_key,
            "x-ncp-apigw-signature-v2": signature(
                self._secret_key, method, uri, timestamp, self._access_key
            ),
            "Content-Type": "application/json",
        }

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        creates: bool = False,
        read: bool = False,
    ) -> Any:
        """Send one signed request and return the success payload (`resources`/`resource`).

        `read` marks a request that is safe to repeat (a search is a POST but reads only): it is
        retried like a 5xx when the answer is malformed JSON or service error 901 (temporary).
        """
        attempts = 1 + self.http.retries if read else 1
        for attempt in range(attempts):
            outcome = self._exchange(method, path, query, body, creates, read)
            if not isinstance(outcome, _Retry):
                return outcome
            if attempt + 1 >= attempts:
                raise outcome.error
            logger.info("NCP WSC %s %s: %s; trying again", method, path, outcome.error.message)
            self.http.sleep(min(self.http.backoff * 2**attempt, self.http.backoff_max))
        raise AssertionError("unreachable")

    def _exchange(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        creates: bool,
        read: bool,
    ) -> Any:
        # The signed URI must be exactly the one sent: the query string is built here, once.
        relative = path + (f"?{urlencode(list(query.items()))}" if query else "")
        uri = urlsplit(self.http.base_url).path.rstrip("/") + "/" + relative
        response = self.http.request(
            method,
            relative,
            json_body=body,
            headers=self._headers(method, uri),
            creates=creates,
            idempotent=True if read else None,
            accept_status=(400, 401, 403, 404, 413),
        )
        parsed = _parse(response)
        # Decided by the body, not the status: service errors come with HTTP 200 on the older
        # pages and 400 on the current one (fact sheet "Errors" 2).
        found = None if parsed is _MALFORMED else _error_of(parsed)
        if found is None and not response.ok:
            found = _status_code(response.status_code)
            if found is None:
                raise self.http.status_error(response, creates)
        if found is not None:
            failure = self._failure(response, found, creates)
            if read and isinstance(failure, ApiCallFailError):
                return _Retry(failure)  # 901 is "temporary" (fact sheet "Errors" 2)
            raise failure
        if parsed is _MALFORMED:
            where = f"{method} {urlsplit(response.url).path}"
            if creates:
                raise AmbiguousStartError(f"ncp-wsc: the createJob answer was not JSON ({where})")
            error = UnexpectedResponseError(f"ncp-wsc returned malformed JSON for {where}")
            if read:
                return _Retry(error)
            raise error
        return _payload(parsed)

    def _failure(
        self, response: requests.Response, found: tuple[str, str, str], creates: bool
    ) -> ProviderError:
        """The error for an NCP error body."""
        code, message, details = found
        where = f"{response.request.method} {urlsplit(response.url).path}"
        said = self.http.redact(one_line(f"{message}" + (f" ({details})" if details else ""), 300))
        if code == "200":
            return self._auth_failure(response, where, said)
        cls, what, hint = _GATEWAY.get(code) or _SERVICE.get(code) or (ProviderError, "", "")
        if code == "901":
            cls = ApiCallFailError
        text = f"NCP WSC {what or 'API error'} (errorCode {code} on {where}: {said})"
        if creates and (code == "901" or cls is ProviderUnavailableError):
            # The service answered but may have half-acted; the runner looks the job up by
            # its memo before another (billed) createJob is sent.
            return AmbiguousStartError(text)
        return cls(text, hint=hint)

    def _auth_failure(self, response: requests.Response, where: str, said: str) -> ProviderError:
        """A gateway 401: bad signature, unknown key or stale timestamp look alike on the wire."""
        skew = _clock_skew(response, self.http.clock())
        if skew is not None and abs(skew) >= SKEW_SUSPECT:
            side = "behind" if skew > 0 else "ahead of"
            return ProviderAuthError(
                f"NCP WSC rejected the request signature (errorCode 200 on {where}): this "
                f"machine's clock is {abs(skew):.0f} s {side} the NCP gateway's, and NCP "
                f"refuses timestamps more than {SKEW_LIMIT / 60:.0f} minutes off",
                hint="synchronise the clock (NTP) and run again",
            )
        return ProviderAuthError(
            f"NCP WSC rejected the credentials (errorCode 200 on {where}: {said})",
            hint=f"check {CREDENTIALS} (the signature also fails when this machine's clock is "
            "more than 5 minutes off)",
        )

    # Finding jobs (fact sheet "searchJobs", "getJobs").

    def _search_page(
        self, kind: str, keyword: str, code: int | None, page: int
    ) -> tuple[list[Mapping[str, Any]], int | None]:
        # All five keys are required; `statusCode` null lists every state (fact sheet).
        body = {
            "searchType": kind,
            "searchKeyword": keyword,
            "statusCode": code,
            "limit": PAGE_LIMIT,
            "page": page,
        }
        return _records(self._call("POST", "jobs/search", body=body, read=True), page)

    def _jobs(self, kind: str, keyword: str, code: int | None) -> Iterator[Mapping[str, Any]]:
        """Every job a search lists, page after page (newest first), to the last page.

        The last page is the announced one (`total_page_cnt`, else from `total_cnt`) or an
        empty one (fact sheet "getJobs"); a looping search raises `PagingError` (exit 3).
        """
        guard = PageGuard(self.display_name, "job search", PAGE_LIMIT)
        page = 0
        while True:
            page += 1
            records, pages = self._search_page(kind, keyword, code, page)
            guard.page(_signature(records), pages=pages)
            yield from records
            if not records or (pages is not None and page >= pages):
                return

    def _find(self, scan: ScanRef, code: int | None) -> Mapping[str, Any] | None:
        """The search record of `scan` among the jobs in state `code` (any state when None)."""
        memo = scan.extra.get("memo", "")
        kind, keyword = ("memo", memo) if memo else ("url", _host(scan.target))
        return next((r for r in self._jobs(kind, keyword, code) if _id(r) == scan.scan_id), None)

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: a job for the same start URL in a pending/running state.

        Records carry only a display string, so each active `statusCode` is searched for.
        """
        for code in ACTIVE:
            for record in self._jobs("url", _host(target), code):
                if _id(record) and same_url(_text(record.get("start_url")), target):
                    self._codes[_id(record)] = code
                    return self._ref(record, target)
        return None

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        """See `Provider.find_started`: the job whose `Memo` is this attempt's unique marker."""
        return self._by_memo(attempt, tries=FIND_TRIES)

    def _by_memo(self, attempt: StartAttempt, tries: int) -> ScanRef | None:
        for number in range(tries):
            if number:
                self.http.sleep(FIND_PAUSE)
            for record in self._jobs("memo", attempt.marker, None):
                memo = _text(record.get("memo"))
                job_id = _id(record)
                if memo == attempt.marker and job_id and job_id not in attempt.known_ids:
                    return self._ref(record, attempt.target)
        return None

    def attach(self, scan_id: str, target: str) -> ScanRef:
        """See `Provider.attach`: the job is looked up in `getJobs` to learn its memo."""
        guard = PageGuard(self.display_name, "job list", PAGE_LIMIT)
        page = 0
        while True:
            page += 1
            query = {"limit": PAGE_LIMIT, "page": page}
            records, pages = _records(self._call("GET", "jobs", query=query, read=True), page)
            guard.page(_signature(records), pages=pages)
            for record in records:
                if _id(record) == scan_id:
                    return self._ref(record, target)
            if not records or (pages is not None and page >= pages):
                break
        raise ProviderError(
            f"NCP WSC lists no job {one_line(scan_id, 40)}",
            hint="check --scan-id (the instanceNo in the WSC console)",
        )

    def _ref(self, record: Mapping[str, Any], target: str) -> ScanRef:
        memo = _text(record.get("memo"))
        self._records[_id(record)] = record
        return ScanRef(
            scan_id=ScanId(_id(record)),
            target=target,
            created_at=_kst(record.get("start_date")),
            extra={"memo": memo} if memo else {},
        )

    # Starting (fact sheet "createJob").

    def start(self, attempt: StartAttempt) -> ScanRef:
        """See `Provider.start`: `PUT /job` once; the job is then found by its memo.

        Each createJob is billed: nothing here sends it twice.
        """
        payload = self._call("PUT", "job", body=self._job_body(attempt), creates=True)
        job_id = _new_id(payload)
        if job_id:
            return ScanRef(
                scan_id=ScanId(job_id),
                target=attempt.target,
                created_at=attempt.sent_at,
                extra={"memo": attempt.marker},
            )
        # NOTE: the createJob answer is not documented (INFERRED wrapper); find the job by memo.
        try:
            found = self._by_memo(attempt, tries=FIND_TRIES)
        except ProviderError as exc:
            # The job exists and is billed: the user must learn that, not only why the search
            # failed.
            raise ProviderError(
                f"NCP WSC accepted the job but looking it up by memo {attempt.marker} failed "
                f"({exc.message}); not starting another (each createJob is billed)",
                hint=f"look for memo {attempt.marker} in the WSC console",
            ) from None
        if found is None:
            raise ProviderError(
                f"NCP WSC accepted the job but lists none with memo {attempt.marker}; "
                "not starting another (each createJob is billed)",
                hint=f"look for memo {attempt.marker} in the WSC console",
            )
        return found

    def _job_body(self, attempt: StartAttempt) -> dict[str, Any]:
        options = self.options
        body: dict[str, Any] = {
            "StartUrl": attempt.target,
            # Required by the ko/older en pages, optional in the newer: always sent.
            "ExcludeUrl": [str(url) for url in options.get("exclude_urls", [])],
            "VulnItems": [str(item) for item in options.get("vuln_items", DEFAULT_VULN_ITEMS)],
            "UserAgent": str(options.get("user_agent", DEFAULT_USER_AGENT)),
            "Speed": str(options.get("speed", DEFAULT_SPEED)),  # a string on the wire
            "Memo": attempt.marker,
        }
        headers = options.get("headers")
        if headers:
            body["Headers"] = {str(k): str(v) for k, v in headers.items()}
        if "master_instance_no" in options:
            body["MasterInstanceNo"] = str(options["master_instance_no"])
        return body

    # Polling: the `statusCode` filter is authoritative; display strings may be localised.

    def poll(self, scan: ScanRef) -> ScanProgress:
        """See `Provider.poll`: the job's `statusCode`, with `progress` when given."""
        code, record = self._status(scan)
        self._records[scan.scan_id] = record
        progress = _percent(record.get("progress"))
        if progress is not None:
            self._progress[scan.scan_id] = progress
        text = one_line(_text(record.get("status")), 60)
        if code is None:
            logger.warning("NCP WSC job state %r is undocumented; still waiting", text)
            return ScanProgress(status=ScanStatus.RUNNING, raw_status=text, progress=progress)
        info = CODES[code]
        ended_early = info.status in (ScanStatus.FAILED, ScanStatus.CANCELLED)
        last = self._progress.get(scan.scan_id, 0.0) if code != 15 else 0.0
        return ScanProgress(
            status=info.status,
            raw_status=f"{code} {text or info.text}",
            progress=None if info.status.terminal else progress,
            phase=info.phase,
            completeness=int(last) if ended_early else 100,
            message=_ending(code, record) if ended_early else "",
        )

    def _status(self, scan: ScanRef) -> tuple[int | None, Mapping[str, Any]]:
        """The job's code and record: its last code first, then the likeliest others."""
        last = self._codes.get(scan.scan_id)
        if last is not None:
            record = self._find(scan, last)
            if record is not None:
                return last, record
        record = self._find(scan, None)
        if record is None:
            raise UnexpectedResponseError(
                f"NCP WSC no longer lists job {scan.scan_id}",
                hint="it may have been deleted in the WSC console",
            )
        text = _text(record.get("status"))
        if self._unknown.get(scan.scan_id) == text:
            return None, record  # already probed every code for this state
        for code in _candidates(last, _hint(record)):
            found = self._find(scan, code)
            if found is not None:
                self._codes[scan.scan_id] = code
                self._unknown.pop(scan.scan_id, None)
                return code, found
        self._unknown[scan.scan_id] = text
        return None, record

    # Results (fact sheet "getReport").

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        """See `Provider.fetch`: the report exists only for completed jobs."""
        record = self._records.get(scan.scan_id, {})
        findings: list[Finding] = []
        notes: dict[str, str] = {}
        short = ""
        if progress.status is ScanStatus.COMPLETED:
            resource = self._call("GET", f"jobs/{quote(scan.scan_id, safe='')}/report", read=True)
            if not isinstance(resource, Mapping):
                raise UnexpectedResponseError(f"NCP WSC report of job {scan.scan_id} is empty")
            findings, notes, short = self._report(resource, scan, record)
        return ScanResult(
            provider=self.name,
            scanner=self.display_name,
            scan_id=scan.scan_id,
            target=scan.target,
            status=progress.status,
            completeness=progress.completeness,
            started_at=_kst(record.get("start_date")) or scan.created_at,
            finished_at=_kst(record.get("end_date")),
            findings=tuple(findings),
            console_url=scan.console_url,
            message=progress.message,
            details={**_record_details(record), **notes},
            shortfall=short,
        )

    def _report(
        self, resource: Mapping[str, Any], scan: ScanRef, record: Mapping[str, Any]
    ) -> tuple[list[Finding], dict[str, str], str]:
        """The report's findings, notes, and how they fall short of the counts it announces."""
        details = resource.get("Details")
        if details in (None, "", [], {}):
            details = {}
        if not isinstance(details, Mapping):
            raise UnexpectedResponseError(f"NCP WSC report of job {scan.scan_id}: no `Details`")
        advice = resource.get("Recommendation")
        advice = advice if isinstance(advice, Mapping) else {}
        findings: list[Finding] = []
        seen: set[str] = set()
        skipped = 0
        by_category: Counter[str] = Counter()
        for category, block in details.items():
            found, lost = self._category(str(category), block, _text(advice.get(category)), scan)
            skipped += lost
            for finding, key in found:
                if key and key in seen:
                    continue  # `vuln_key` is unique per vulnerability (fact sheet)
                seen.add(key)
                findings.append(finding)
                by_category[str(category)] += 1
        notes = _report_details(resource, len(findings))
        if skipped:
            notes["findings_skipped"] = str(skipped)
        counts = _announced(resource, record, findings, by_category)
        short = shortfall(self.display_name, counts, unreadable=skipped)
        if short:
            logger.warning("NCP WSC job %s: %s", scan.scan_id, short)
        return findings, notes, short

    def _category(
        self, category: str, block: Any, advice: str, scan: ScanRef
    ) -> tuple[list[tuple[Finding, str]], int]:
        """Findings of one `Details` category (its numbered keys only) and how many were lost."""
        if not isinstance(block, Mapping):
            logger.warning("NCP WSC category %r skipped: not an object", one_line(category, 60))
            return [], 0
        numbered = sorted((k for k in block if _numbered(k)), key=_number_order)
        items = [block[key] for key in numbered]
        try:
            severity = Severity.parse(_text(block.get("RiskLevel")))
        except ValueError:
            logger.warning(
                "NCP WSC category %r skipped: RiskLevel %r unknown",
                one_line(category, 60),
                one_line(_text(block.get("RiskLevel")), 20),
            )
            return [], len(items)
        found: list[tuple[Finding, str]] = []
        for item in items:
            if not isinstance(item, Mapping):
                logger.warning("NCP WSC finding in %r skipped: not an object", one_line(category))
                continue
            finding = self._finding(category, block, item, severity, advice, scan)
            found.append((finding, _text(item.get("vuln_key"))))
        return found, len(items) - len(found)

    def _finding(
        self,
        category: str,
        block: Mapping[str, Any],
        item: Mapping[str, Any],
        severity: Severity,
        advice: str,
        scan: ScanRef,
    ) -> Finding:
        method, url = split_url(_text(item.get("URL")))
        # The category is the rule (design §9 "Ignores": NCP category).
        return Finding.create(
            provider=self.name,
            rule_id=category,
            title=_text(item.get("Title")) or category,
            severity=severity,
            url=url,
            method=method,
            parameter=_text(item.get("VulnParam")),
            request=_request_evidence(item, method, url),
            response=_lines(item.get("Response_Data")),
            description=_description(block, item),
            remediation=advice,
            references=tuple(_lines(item.get("Reference")).split()),
            console_url=scan.console_url,
        )

    # Cancelling (fact sheet "cancelJob / stopJob").

    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        """See `Provider.cancel`: cancelJob while pending, stopJob while running.

        The job may have moved on since the last poll: the wrong call answers 901, and then the
        other one is tried.
        """
        if progress is not None and progress.status.terminal:
            return
        code = self._codes.get(scan.scan_id)
        if code is not None and code not in ACTIVE:
            return
        calls = ("stop", "cancel") if code in RUNNING_CODES else ("cancel", "stop")
        path = f"jobs/{quote(scan.scan_id, safe='')}"
        try:
            self._call("PATCH", f"{path}/{calls[0]}")
        except ApiCallFailError as first:
            logger.info("NCP WSC %s refused (%s); trying %s", calls[0], first.message, calls[1])
            self._call("PATCH", f"{path}/{calls[1]}")


_MALFORMED = object()


def _parse(response: requests.Response) -> Any:
    """The JSON body, None when empty, `_MALFORMED` when unreadable."""
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
        return _MALFORMED


def _error_of(body: Any) -> tuple[str, str, str] | None:
    """(code, message, details) of an error body; None for a success.

    Gateway: `{"error": {"errorCode": "200", "message", "details"}}`; service: the same with a
    numeric code; a wrapper whose `returnCode` is not 0 counts too (fact sheet "Errors").
    """
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        code = _code_text(error.get("errorCode")) or "?"
        return code, _text(error.get("message")), _text(error.get("details"))
    code = _code_text(body.get("returnCode"))
    if code and code != "0":
        message = _text(body.get("returnMessage")) or _text(body.get("returnDesc"))
        return code, message, ""
    return None


def _status_code(status: int) -> tuple[str, str, str] | None:
    """A gateway code for an error status without an NCP error body (a proxy's 401 page)."""
    if status == 401:
        return "200", "Authentication Failed", ""
    if status == 403:
        return "210", "Permission Denied", ""
    return None


def _payload(body: Any) -> Any:
    """The success payload: `resources`, or `resource` for getReport (fact sheet)."""
    if body is None:
        return None
    if not isinstance(body, Mapping):
        raise UnexpectedResponseError("ncp-wsc answered with JSON that is not an object")
    if "resources" in body:
        return body["resources"]
    return body.get("resource")


def _records(payload: Any, page: int) -> tuple[list[Mapping[str, Any]], int | None]:
    """The `record_data` of a getJobs/searchJobs answer and its page count (None: unknown)."""
    if payload is None:
        return [], 0
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, Mapping)], page
    if not isinstance(payload, Mapping):
        raise UnexpectedResponseError("NCP WSC job list is not an object")
    data = payload.get("record_data")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise UnexpectedResponseError("NCP WSC job list has no `record_data` list")
    records = [r for r in data if isinstance(r, Mapping)]
    pages = _integer(payload.get("total_page_cnt"))
    if pages is None:
        total = _integer(payload.get("total_cnt"))
        pages = math.ceil(total / PAGE_LIMIT) if total is not None else None
    return records, pages


def _signature(records: list[Mapping[str, Any]]) -> tuple[str, ...]:
    """What tells one page of jobs from another, for `PageGuard`."""
    return tuple(_id(record) or repr(record) for record in records)


def _new_id(payload: Any) -> str:
    """The new job's `instanceNo`, when the createJob answer carries it (INFERRED)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, Mapping):
        return _id(payload)
    text = _code_text(payload)
    return text if text.isdigit() else ""


def _id(record: Mapping[str, Any]) -> str:
    for key in ("instanceNo", "instance_no", "InstanceNo"):
        text = _code_text(record.get(key))
        if text:
            return text
    return ""


def _hint(record: Mapping[str, Any]) -> int | None:
    """The code a record's display string or `result_button` suggests, if any."""
    text = " ".join(_text(record.get("status")).lower().split())
    if text in _TEXT_HINTS:
        return _TEXT_HINTS[text]
    return _BUTTON_HINTS.get(_text(record.get("result_button")).lower())


def _candidates(last: int | None, hint: int | None) -> list[int]:
    """Codes to search for, likeliest first: the hint, what follows `last`, then the rest."""
    order: list[int] = [] if hint is None else [hint]
    if last in FLOW:
        order += [*FLOW[FLOW.index(last) + 1 :], *ENDINGS]
    order += [*FLOW, *ENDINGS]
    return [code for n, code in enumerate(order) if code != last and code not in order[:n]]


def _ending(code: int, record: Mapping[str, Any]) -> str:
    reason = one_line(_text(record.get("result_desc")), 300)
    what = {
        5: "the diagnosis failed",
        15: "the URL collection (crawl) failed",
        91: "the job was cancelled",
        92: "the job is being stopped",
        93: "the job was stopped",
    }[code]
    return f"NCP WSC: {what} (statusCode {code})" + (f": {reason}" if reason else "")


def _clock_skew(response: requests.Response, now: float) -> float | None:
    """Seconds the gateway's `Date` is ahead of our clock; None without a usable header."""
    try:
        date = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if date.tzinfo is None:
        return None
    return date.timestamp() - now


_METHOD_URL = re.compile(r"\s*\[([A-Za-z]+)\]\s*(.*)", re.DOTALL)


def split_url(raw: str) -> tuple[str, str]:
    """`"[GET]&nbsp;&nbsp;http://…"` → `("GET", "http://…")` (fact sheet "getReport").

    The field is HTML text: entities are decoded. Without the `[METHOD]` prefix the method is
    empty and the whole text is the URL.
    """
    text = html.unescape(raw)
    match = _METHOD_URL.fullmatch(text)
    if match is None:
        return "", text.strip()
    return match[1].upper(), match[2].strip()


def same_url(left: str, right: str) -> bool:
    """True when two start URLs name the same page (case of scheme/host, default port, `/`)."""
    return _url_key(left) == _url_key(right)


def _url_key(url: str) -> str:
    text = url.strip()
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        port = parts.port
    except ValueError:
        return text.lower()
    scheme = (parts.scheme or "http").lower()
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = (parts.hostname or "") + (f":{port}" if port and port != default else "")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{parts.path.rstrip('/') or '/'}{query}"


def _host(target: str) -> str:
    """The host of a start URL, the keyword of `url` searches (a substring of `start_url`)."""
    text = target.strip()
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname
    except ValueError:
        host = None
    return host or text


def _request_evidence(item: Mapping[str, Any], method: str, url: str) -> str:
    """Request line and headers, body, then the payload WSC injected (`VulnSTR`)."""
    head = _text(item.get("Request_Header"))
    if not head or not re.match(r"[A-Z]+ \S", head):
        line = f"{method} {url}".strip()
        head = f"{line}\n{head}".strip() if line else head
    referer = _text(item.get("Referer"))
    if referer and "referer:" not in head.lower():
        head += f"\nReferer: {referer}"
    parts = [head, _text(item.get("Request_Body"))]
    payload = _text(item.get("VulnSTR"))
    if payload:
        where = _text(item.get("VulnParam"))
        parts.append(f"WSC payload{f' in {where}' if where else ''}: {payload}")
    return "\n\n".join(part for part in parts if part)


def _description(block: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    parts = [_text(block.get(key)) for key in ("Vuln_Desc", "Vuln_Desc2")]
    parts.append(_text(item.get("Description")))
    key = _text(item.get("vuln_key"))
    if key:
        parts.append(f"WSC vuln_key: {key}")
    return "\n\n".join(dict.fromkeys(part for part in parts if part))


def _lines(value: Any) -> str:
    """An array of lines (`Response_Data`) or a string, as text."""
    if isinstance(value, list):
        return "\n".join(line if isinstance(line, str) else "" for line in value).strip()
    return _text(value)


def _numbered(key: Any) -> bool:
    """A finding's key in a category (`"0"`, `"1"`): ASCII digits (`"²".isdigit()` is true)."""
    return isinstance(key, str) and key.isascii() and key.isdigit()


def _number_order(key: str) -> tuple[int, str]:
    """Numeric order of a digit string, without `int()` (which refuses over 4,300 digits)."""
    digits = key.lstrip("0")
    return len(digits), digits


def _record_details(record: Mapping[str, Any]) -> dict[str, str]:
    names = {"crawl_cnt": "urls_crawled", "scan_cnt": "vulnerabilities_found", "memo": "memo"}
    details = {name: _text(record.get(key)) for key, name in names.items()}
    return {key: one_line(value, 200) for key, value in details.items() if value}


def _announced(
    resource: Mapping[str, Any],
    record: Mapping[str, Any],
    findings: list[Finding],
    by_category: Counter[str],
) -> list[tuple[str, int | None, int]]:
    """(what, announced, fetched) for `shortfall`: the report's `Classify_byRisk_Level` total
    (or the job's `scan_cnt`, the larger) and levels, and `Classify_byRisk_Vulnerability`
    per category (fact sheet "getReport" counts, "getJobs" `scan_cnt`)."""
    levels = _mapping(resource.get("Classify_byRisk_Level"))
    announced = (_integer(levels.get("Total")), _integer(record.get("scan_cnt")))
    totals = [n for n in announced if n is not None]
    risks = {Severity.parse(level): _integer(levels.get(level)) for level in RISK_LEVELS}
    counts = [("findings", max(totals) if totals else None, len(findings))]
    counts += by_severity(risks, findings)
    for category, count in _mapping(resource.get("Classify_byRisk_Vulnerability")).items():
        what = f"findings in category {one_line(str(category), 80)!r}"
        counts.append((what, _integer(count), by_category[str(category)]))
    return counts


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _report_details(resource: Mapping[str, Any], parsed: int) -> dict[str, str]:
    notes = {"findings_parsed": str(parsed)}
    counts = resource.get("Classify_byRisk_Level")
    if isinstance(counts, Mapping):
        for key in ("Total", "High", "Medium", "Low"):
            number = _integer(counts.get(key))
            if number is not None:
                notes[f"reported_{key.lower()}"] = str(number)
    for key, name in (("Crawl_Time", "crawl_time"), ("Scan_Time", "scan_time")):
        if _text(resource.get(key)):
            notes[name] = one_line(_text(resource.get(key)), 100)
    return notes


def _kst(value: Any) -> datetime | None:
    """`"YYYY-MM-DD hh:mm:ss"` (Korea time, INFERRED) as an aware UTC datetime."""
    text = _text(value)
    if not text:
        return None
    for shape in ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S"):
        try:
            moment = datetime.strptime(text, shape)
        except ValueError:
            continue
        try:
            return moment.replace(tzinfo=KST).astimezone(timezone.utc)
        except OverflowError:
            return None  # 0001-01-01 in Korea is still year 0 in UTC
    return None


def _text(value: Any, default: str = "") -> str:
    """A scalar as stripped text; anything else (None, objects, lists) as `default`."""
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list)):
        return default
    return str(value).strip() or default


def _code_text(value: Any) -> str:
    """A code or id as text, `901` and `"901"` and `901.0` alike (string-typed numbers)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _text(value)


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


def _percent(value: Any) -> float | None:
    """`progress` (a number or a string, `null` when done) clamped to 0..100."""
    number = _number(value)
    return None if number is None else min(100.0, max(0.0, number))
