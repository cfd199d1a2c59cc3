"""NAVER Cloud Web Security Checker: signed requests, jobs found by memo, reports by category.

Facts come from `providers/ncp-wsc.md` (the "fact sheet"); section names are cited in comments.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import requests

from scangate.errors import (
    AmbiguousStartError,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailableError,
    UnexpectedResponseError,
)
from scangate.http import Connection, Refusal, TryAgain
from scangate.model import Finding, ScanId, ScanResult, ScanStatus
from scangate.model.scans import ScanProgress, ScanRef
from scangate.model.settings import ProviderSettings
from scangate.providers import _wire as wire
from scangate.providers import ncp_wsc_codes as codes
from scangate.providers.interface import Capabilities, CredentialSpec, Provider, StartAttempt
from scangate.providers.ncp_wsc_codes import (
    ACCESS_KEY,
    ACTIVE,
    CODES,
    CREDENTIALS,
    PAGE_LIMIT,
    RUNNING_CODES,
    SECRET_KEY,
    ApiCallFailError,
)
from scangate.providers.ncp_wsc_report import read_report, record_details
from scangate.providers.paging import PageGuard
from scangate.text import one_line

logger = logging.getLogger(__name__)


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

DEFAULT_VULN_ITEMS = ("ALL",)
DEFAULT_USER_AGENT = "PC Chrome"
DEFAULT_SPEED = "1"
"""Defaults for required createJob fields without a documented default (design §9)."""


class NcpWscProvider(Provider, registered="ncp-wsc"):
    """The WSC adapter: `PUT /job`, `POST /jobs/search`, `PATCH …/cancel|stop`, `GET …/report`."""

    DEFAULT_BASE_URL: ClassVar[str] = "https://wsc.apigw.ntruss.com/api/v1"
    api_version: ClassVar[str] = "v1"
    credentials: ClassVar[tuple[CredentialSpec, ...]] = (
        CredentialSpec.pair(
            ACCESS_KEY,
            SECRET_KEY,
            "Sub Account access key and secret key (HMAC-SHA256 request signing)",
        ),
    )
    options_schema: ClassVar[Mapping[str, Any]] = Provider.schema_of(
        {
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
    )

    capabilities: ClassVar[Capabilities] = Capabilities(
        progress=True, eta=False, cancel=True, attach=True, rate_limit_headers=False
    )
    secret_headers: ClassVar[tuple[str, ...]] = (
        "x-ncp-apigw-signature-v2",
        "x-ncp-iam-access-key",
    )

    def __init__(
        self, *, settings: ProviderSettings, env: Mapping[str, str], connection: Connection
    ) -> None:
        """Create a new `NcpWscProvider`; see `Provider.__init__`.

        Every request is signed with `NCP_SECRET_KEY` for its own method, URI and timestamp.
        """
        super().__init__(settings=settings, env=env, connection=connection)
        self._access_key = env.get(ACCESS_KEY, "").strip()
        self._secret_key = env.get(SECRET_KEY, "").strip()
        self.redact.add(self._secret_key)
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
        found = codes.error_of(body)
        if found is None:
            return wire.body_start(response)
        code, message, details = found
        return f"errorCode {code}: {message}" + (f" ({details})" if details else "")

    @staticmethod
    def refusal(response: requests.Response, body: Any) -> Refusal | None:
        """See `Provider.refusal`: the gateway's HTTP 429 `Quota Exceeded` (errorCode 400) does
        not clear within a run; `Throttle Limited` (410) and `Rate Limited` (420) are the
        request rate (fact sheet "Errors" 1). NCP documents no concurrent-job limit.
        """
        found = codes.error_of(body)
        if response.status_code == 429 and found is not None and found[0] == "400":
            return Refusal.final(
                "the API Gateway quota of this NCP account is used up; wait for it to "
                "reset or raise it in the NCP console",
            )
        return None

    def credential_hint(self) -> str:
        """See `Provider.credential_hint`."""
        return CREDENTIALS

    # Signed requests (fact sheet "Request signing", "Common response wrapper", "Errors").

    def authorize(self, method: str, url: str) -> Mapping[str, str]:
        """See `Provider.authorize`: the request signed for its method, URI and timestamp.

        The signed URI is the path from `/api/v1` with the query string, exactly as sent.
        """
        parts = urlsplit(url)
        uri = parts.path + (f"?{parts.query}" if parts.query else "")
        timestamp = str(int(self.now() * 1000))
        return {
            "x-ncp-apigw-timestamp": timestamp,
            "x-ncp-iam-access-key": self._access_key,
            "x-ncp-apigw-signature-v2": codes.signature(
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

        def again(error: ProviderError) -> None:
            logger.info("NCP WSC %s %s: %s; trying again", method, path, error.message)

        return self.http.retry_reads(
            lambda: self._exchange(method, path, query, body, creates, read), read=read, again=again
        )

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
        response = self.http.request(
            method,
            relative,
            json_body=body,
            creates=creates,
            idempotent=True if read else None,
            accept_status=(400, 401, 403, 404, 413),
        )
        parsed = codes.parse(response)
        # Decided by the body, not the status: service errors come with HTTP 200 on the older
        # pages and 400 on the current one (fact sheet "Errors" 2).
        found = None if parsed is codes.MALFORMED else codes.error_of(parsed)
        if found is None and not response.ok:
            found = codes.status_code(response.status_code)
            if found is None:
                raise self.http.status_error(response, creates)
        if found is not None:
            failure = self._failure(response, found, creates)
            if read and isinstance(failure, ApiCallFailError):
                return TryAgain(failure)  # 901 is "temporary" (fact sheet "Errors" 2)
            raise failure
        if parsed is codes.MALFORMED:
            where = f"{method} {urlsplit(response.url).path}"
            if creates:
                raise AmbiguousStartError(f"ncp-wsc: the createJob answer was not JSON ({where})")
            error = UnexpectedResponseError(f"ncp-wsc returned malformed JSON for {where}")
            if read:
                return TryAgain(error)
            raise error
        return codes.payload(parsed)

    def _failure(
        self, response: requests.Response, found: tuple[str, str, str], creates: bool
    ) -> ProviderError:
        """The error for an NCP error body."""
        code, message, details = found
        where = f"{response.request.method} {urlsplit(response.url).path}"
        said = self.redact(one_line(f"{message}" + (f" ({details})" if details else ""), 300))
        if code == "200":
            return self._auth_failure(response, where, said)
        cls, what, hint = (
            codes.GATEWAY.get(code) or codes.SERVICE.get(code) or (ProviderError, "", "")
        )
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
        skew = codes.clock_skew(response, self.now())
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
        return codes.records(self._call("POST", "jobs/search", body=body, read=True), page)

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
            guard.page(codes.page_signature(records), pages=pages)
            yield from records
            if not records or (pages is not None and page >= pages):
                return

    def _find(self, scan: ScanRef, code: int | None) -> Mapping[str, Any] | None:
        """The search record of `scan` among the jobs in state `code` (any state when None)."""
        memo = scan.extra.get("memo", "")
        kind, keyword = ("memo", memo) if memo else ("url", wire.url_host(scan.target))
        return next(
            (r for r in self._jobs(kind, keyword, code) if codes.job_id(r) == scan.scan_id), None
        )

    def find_running(self, target: str) -> ScanRef | None:
        """See `Provider.find_running`: a job for the same start URL in a pending/running state.

        Records carry only a display string, so each active `statusCode` is searched for.
        """
        for code in ACTIVE:
            for record in self._jobs("url", wire.url_host(target), code):
                if codes.job_id(record) and codes.same_url(
                    wire.text(record.get("start_url")), target
                ):
                    self._codes[codes.job_id(record)] = code
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
                memo = wire.text(record.get("memo"))
                job_id = codes.job_id(record)
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
            records, pages = codes.records(self._call("GET", "jobs", query=query, read=True), page)
            guard.page(codes.page_signature(records), pages=pages)
            for record in records:
                if codes.job_id(record) == scan_id:
                    return self._ref(record, target)
            if not records or (pages is not None and page >= pages):
                break
        raise ProviderError(
            f"NCP WSC lists no job {one_line(scan_id, 40)}",
            hint="check --scan-id (the instanceNo in the WSC console)",
        )

    def _ref(self, record: Mapping[str, Any], target: str) -> ScanRef:
        memo = wire.text(record.get("memo"))
        self._records[codes.job_id(record)] = record
        return ScanRef(
            scan_id=ScanId(codes.job_id(record)),
            target=target,
            created_at=codes.kst(record.get("start_date")),
            extra={"memo": memo} if memo else {},
        )

    # Starting (fact sheet "createJob").

    def start(self, attempt: StartAttempt) -> ScanRef:
        """See `Provider.start`: `PUT /job` once; the job is then found by its memo.

        Each createJob is billed: nothing here sends it twice.
        """
        payload = self._call("PUT", "job", body=self._job_body(attempt), creates=True)
        job_id = codes.new_id(payload)
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
        progress = wire.percent(record.get("progress"))
        if progress is not None:
            self._progress[scan.scan_id] = progress
        text = one_line(wire.text(record.get("status")), 60)
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
            message=codes.ending(code, record) if ended_early else "",
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
        text = wire.text(record.get("status"))
        if self._unknown.get(scan.scan_id) == text:
            return None, record  # already probed every code for this state
        for code in codes.candidates(last, codes.hint(record)):
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
            findings, notes, short = read_report(resource, scan, record)
        return self.result(
            scan,
            progress,
            findings=findings,
            started_at=codes.kst(record.get("start_date")) or scan.created_at,
            finished_at=codes.kst(record.get("end_date")),
            details={**record_details(record), **notes},
            shortfall=short,
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
